"""regbench: see, with evidence, what regularizers do to a CNN."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("regbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
