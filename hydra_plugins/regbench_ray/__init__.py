"""regbench's Hydra launcher plugin for Ray: ``hydra/launcher=ray`` on current Ray."""
