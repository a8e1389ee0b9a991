"""Training: the session both engines set up, the run around the steps, the two engines, checkpoints."""
