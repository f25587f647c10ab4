"""The exception of the visualization area."""

from openchat_hf.errors import OpenChatError


class VisualizationError(OpenChatError, ValueError):
    """Bad visualization input (dataset, report, embeddings endpoint) or a page that cannot be built."""
