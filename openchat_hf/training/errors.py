"""The training area's exception."""

from openchat_hf.errors import OpenChatError


class TrainingError(OpenChatError, ValueError):
    """Bad training input or configuration (missing columns, impossible batch budget, unknown loss mode, ...)."""
