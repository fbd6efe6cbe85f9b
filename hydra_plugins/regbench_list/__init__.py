"""regbench's Hydra sweeper plugin that launches a list of jobs: ``hydra/sweeper=regbench_list``."""
