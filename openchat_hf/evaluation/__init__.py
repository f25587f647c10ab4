"""openchat-hf evaluation."""
