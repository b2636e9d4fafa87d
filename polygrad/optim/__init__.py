"""polygrad.optim: optimizers of the tutorials."""
