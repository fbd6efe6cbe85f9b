"""Hydra presets shipped with regbench (a package so that Hydra finds them when installed)."""
