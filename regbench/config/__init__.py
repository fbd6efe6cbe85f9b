"""Configuration: the typed schema and its presets."""
