"""The base exception of openchat-hf. Each package area defines its own subclass (``DataPipelineError``, ...).

The ``openchat-hf`` command prints an ``OpenChatError`` as a one-line message (no traceback) and exits with 2, so
messages must say what went wrong and what to do.
"""


class OpenChatError(Exception):
    """Base class of every error openchat-hf raises on purpose."""
