"""openchat-hf data."""
