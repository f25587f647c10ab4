"""``openchat-hf patch`` and ``openchat-hf export``."""

from __future__ import annotations

import argparse

from openchat_hf.modeling.context import CONTEXT_METHODS
from openchat_hf.modeling.eot import EOT_INITS


def _patch(args: argparse.Namespace) -> int:
    from openchat_hf.modeling.patch import patch_model

    out = patch_model(
        args.base,
        args.out,
        args.model_type,
        eot_init=args.eot_init,
        context_method=args.context_method,
        max_length=args.max_length,
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    print(f"Patched checkpoint written to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from openchat_hf.modeling.export import export_checkpoint

    out = export_checkpoint(
        args.ckpt,
        args.out,
        push_to=args.push,
        model_type=args.model_type,
        overwrite=args.overwrite,
        private=True if args.private else None,
    )
    print(f"Serving checkpoint written to {out}" + (f" and pushed to {args.push}" if args.push else ""))
    return 0


def add_subcommands(subparsers) -> None:
    patch = subparsers.add_parser(
        "patch",
        help="add the EOT token (and extend the context) of a base model",
        description="Add the model type's <|end_of_turn|> token, chat template and EOS list to a base causal LM, "
        "extend its RoPE context when the model type needs it, and save the checkpoint to OUT.",
    )
    patch.add_argument("base", metavar="BASE", help="base model folder (or a cached Hub id)")
    patch.add_argument("out", metavar="OUT", help="output folder")
    patch.add_argument(
        "--model-type", help="openchat, openchat_8192, opencoder, ... (must fit the base's architecture)"
    )
    patch.add_argument("--eot-init", choices=EOT_INITS, help="EOT row init (default: the model type's)")
    patch.add_argument(
        "--context-method", choices=CONTEXT_METHODS, help="RoPE extension (default: the model type's, if any)"
    )
    patch.add_argument("--max-length", type=int, help="target context (default: the model type's max_length)")
    patch.add_argument("--dtype", default="auto", help="weight dtype to load and save (default: as saved)")
    patch.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    patch.set_defaults(func=_patch)

    export = subparsers.add_parser(
        "export",
        help="write a TGI / vLLM-ready copy of a checkpoint (optionally push it)",
        description="Write a serving-ready copy of CKPT to OUT: the exact training chat template for TGI and vLLM, "
        "generation_config eos list with EOT, a tokenizer/config transformers 4.5x loads, safetensors weights.",
    )
    export.add_argument("ckpt", metavar="CKPT", help="patched or trained checkpoint folder")
    export.add_argument("out", metavar="OUT", help="output folder")
    export.add_argument("--model-type", help="model type (default: the one CKPT records; must agree with it)")
    export.add_argument("--push", metavar="USER/NAME", help="upload OUT to this Hub repo (uses your HF token)")
    export.add_argument("--private", action="store_true", help="create the Hub repo as private")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    export.set_defaults(func=_export)
