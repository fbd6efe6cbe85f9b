"""Training: models, regularizers, optimizers, the epoch loop and its engines."""
