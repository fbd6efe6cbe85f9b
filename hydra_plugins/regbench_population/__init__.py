"""regbench's Hydra launcher plugin: ``hydra/launcher=population``."""
