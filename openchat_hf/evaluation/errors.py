"""The evaluation area's exception."""

from openchat_hf.errors import OpenChatError


class EvaluationError(OpenChatError):
    """Bad evaluation input (missing file, unknown bench, mismatched settings) or an endpoint that keeps failing."""
