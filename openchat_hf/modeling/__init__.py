"""Model patching and export: add the EOT token, extend the context (RoPE), export a TGI / vLLM-ready checkpoint."""

from openchat_hf.modeling.chat_templates import serving_template, write_chat_templates, write_template_copies
from openchat_hf.modeling.context import CONTEXT_METHODS, context_length, extend_context, legacy_rope_fields
from openchat_hf.modeling.eot import EOT_INITS, add_eot_token, set_generation_eos
from openchat_hf.modeling.errors import ModelingError
from openchat_hf.modeling.export import export_checkpoint
from openchat_hf.modeling.hub import push_folder
from openchat_hf.modeling.merge import merge_adapter
from openchat_hf.modeling.patch import patch_loaded_model, patch_model

__all__ = [
    "CONTEXT_METHODS",
    "EOT_INITS",
    "ModelingError",
    "add_eot_token",
    "context_length",
    "export_checkpoint",
    "extend_context",
    "legacy_rope_fields",
    "merge_adapter",
    "patch_loaded_model",
    "patch_model",
    "push_folder",
    "serving_template",
    "set_generation_eos",
    "write_chat_templates",
    "write_template_copies",
]
