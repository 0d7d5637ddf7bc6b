"""Training: loss terms (more to come: steps, loop, data, checkpoints)."""
