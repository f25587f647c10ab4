"""openchat-hf modeling."""
