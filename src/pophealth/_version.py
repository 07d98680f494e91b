"""The installed pophealth version, read once from the package metadata (private).

The version has one source, ``pyproject.toml``; every module that needs it imports
:data:`__version__` from here, never from the package root.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("pophealth")
except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
