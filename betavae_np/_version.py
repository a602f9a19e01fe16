"""Single source of the package version (read by setup.cfg and the model file header)."""

__version__ = "0.1.0"
