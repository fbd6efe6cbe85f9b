"""regbench's Hydra sweeper plugin: ``hydra/sweeper=regbench_jobs`` (a settle's rounds)."""
