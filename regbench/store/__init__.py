"""Storage: what a run and a sweep leave on disk, written and read in one place."""
