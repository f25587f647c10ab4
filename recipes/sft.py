#!/usr/bin/env python
"""Supervised fine-tuning of an OpenChat model with TRL (alignment-handbook style); the same function as
``openchat-hf train`` and ``accelerate launch -m openchat_hf.training.sft``.

    accelerate launch [--config_file accelerate_configs/zero2.yaml] recipes/sft.py \
        --config recipes/openchat/sft/config_13b.yaml [--dataset_path OUT/openchat] [--output_dir DIR] [--key value]

See docs/training.md and :mod:`openchat_hf.training.sft`.
"""

import sys

from openchat_hf.training.sft import main

if __name__ == "__main__":
    sys.exit(main(prog="sft.py"))
