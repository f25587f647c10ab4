"""openchat-hf: OpenChat's recipe (small, high-quality ShareGPT slice -> strong chat model) on the Hugging Face stack."""

from openchat_hf.model_types import ModelType, get_model_type, list_model_types, register_model_type
from openchat_hf.templates import ChatTemplate, setup_tokenizer

__version__ = "0.1.0"

__all__ = [
    "ChatTemplate",
    "ModelType",
    "get_model_type",
    "list_model_types",
    "register_model_type",
    "setup_tokenizer",
    "__version__",
]
