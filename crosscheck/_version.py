"""The package's version, in one place: ``crosscheck.__version__`` and the distribution's
metadata (pyproject.toml reads it with ``[tool.setuptools.dynamic]``)."""

__version__ = "0.1.0"
