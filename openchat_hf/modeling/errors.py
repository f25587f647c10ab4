"""The exception of the modeling area."""

from openchat_hf.errors import OpenChatError


class ModelingError(OpenChatError):
    """A model or checkpoint that cannot be patched, extended or exported as asked."""
