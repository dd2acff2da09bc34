"""The package's one exception."""

from __future__ import annotations


class CheckError(ValueError):
    """Input that cannot be checked.

    The message names the block (or argument) at fault and says how to fix it.
    """
