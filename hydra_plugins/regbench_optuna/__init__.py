"""regbench's Hydra sweeper plugin: ``hydra/sweeper=optuna`` on current Optuna."""
