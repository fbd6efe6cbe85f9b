"""Launching: composing configurations, jobs, sweeps and the benchmark."""
