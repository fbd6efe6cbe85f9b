"""Data: datasets as files and arrays, and batches on the training device."""
