"""The data area's exception."""

from openchat_hf.errors import OpenChatError


class DataPipelineError(OpenChatError):
    """Bad input or configuration for the data pipeline (the message says what to do)."""
