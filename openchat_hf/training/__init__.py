"""openchat-hf training."""
