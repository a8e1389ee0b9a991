"""Where a run's numbers go while it trains: TensorBoard and W&B reporters, loss curves."""
