"""openchat-hf visualization."""
