"""fromsource: a Python package index whose every wheel was built from source here."""

__version__ = "0.1.0"
__all__ = ["__version__"]
