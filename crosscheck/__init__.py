"""crosscheck: prove a hand-written gradient right, or show exactly where it is wrong.

``check()`` compares a hand-written numpy gradient, block by block, with centered finite
differences, ``jax.grad`` and ``torch.autograd`` on identical float64 parameters. Neither jax
nor torch is imported until an oracle needs it.
"""

from ._version import __version__ as __version__  # first: set before any submodule loads
from . import classic as classic
from ._case import Case as Case
from ._cluster import local_cluster as local_cluster
from ._check import check as check
from ._entry_points import locate as locate
from ._errors import CheckError as CheckError
from ._layer import check_layer as check_layer
from ._report import Block as Block
from ._report import Diagnosis as Diagnosis
from ._report import Report as Report
from ._taps import tap as tap


def __getattr__(name):
    # `crosscheck.testing` imports pytest-free helpers only, but stays lazy all the same.
    if name == "testing":
        import importlib
        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module 'crosscheck' has no attribute {name!r}")


__all__ = ["Block", "Case", "CheckError", "Diagnosis", "Report", "check", "check_layer",
           "classic", "local_cluster", "locate", "tap"]
