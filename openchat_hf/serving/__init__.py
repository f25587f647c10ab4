"""openchat-hf serving."""
