"""`Case`: a named thing to check, as the CLI and the comparison script find it.

A Case is the input of ``check(loss, grad, params, *args, **options)`` and nothing more, so
every runner (``crosscheck check``, suites, ``scripts/compare.py``, ``--isolate`` workers)
checks every Case with the same call. A layer becomes one through :meth:`Case.layer`, which
builds that input the way :func:`crosscheck.check_layer` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from ._errors import CheckError


@dataclass(frozen=True)
class Case:
    """A named gradient check: ``check(loss, grad, params, *args, **options)``.

    Args:
        name: short name shown in reports (``"correct"``, ``"buggy"``).
        loss: ``loss(params, *args) -> scalar`` (array API, plain numpy, or a dict of
            per-framework losses; see :func:`crosscheck.check`).
        grad: ``grad(params, *args)``, the hand-written numpy gradient.
        params: dict of named parameter blocks.
        args: extra positional arguments passed to ``loss`` and ``grad``.
        options: keyword options for :func:`crosscheck.check` (e.g. ``{"oracles": ("fd",)}``).

    A layer in the cs231n convention (``forward -> (out, cache)``, ``backward(dout, cache)``)
    is made a Case by :meth:`Case.layer`.
    """

    name: str
    loss: Callable[..., Any] | Mapping[str, Callable[..., Any]]
    grad: Callable[..., Mapping[str, Any] | tuple[Any, Mapping[str, Any]]]
    params: Mapping[str, Any]
    args: tuple[Any, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CheckError(f"a Case's `name` must be a non-empty string (reports, -k and "
                             f"run files name it), got {self.name!r}.")
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))

    @classmethod
    def layer(cls, name: str, forward: Callable[..., Any] | Mapping[str, Callable[..., Any]],
              backward: Callable[..., Any], *, wrt: Optional[Sequence[str]] = None,
              seed: int = 0, dout: Any = None, **inputs: Any) -> "Case":
        """A Case that checks a layer exactly as :func:`crosscheck.check_layer` does.

        The command line, suites and scripts run a Case and know nothing of layers; this
        gives them one: the loss ``Σ out · dout`` (per framework), the gradient from
        ``backward(dout, cache)``, the float array inputs as parameter blocks and ``dout`` as
        the one argument -- built by the same code as ``check_layer``'s, so a layer named on
        the command line is checked as ``check_layer`` checks it.

        Args:
            name: short name shown in reports (``"affine/buggy"``).
            forward, backward, wrt, seed, dout: as for :func:`crosscheck.check_layer`
                (``forward`` may be a dict of per-framework forwards).
            **inputs: the forward's inputs by name, and options of :func:`crosscheck.check`
                (``oracles``, ``tolerances``, ``fd``, …) kept in :attr:`options`; not
                ``case``: ``name`` names the case.

        Returns:
            A Case whose ``options`` hold ``seed`` and the options given. A suite's or the
            command line's ``--seed`` overrides the check's seed; ``dout`` stays the one
            drawn here.

        Raises:
            CheckError: as for ``check_layer``, raised here, before the Case exists: the
                forward runs once now, on the inputs, for its output's shape.

        Example:
            >>> import numpy as np
            >>> from crosscheck import Case
            >>> def fwd(x, w):
            ...     return x @ w, (x, w)
            >>> def bwd(dout, cache):
            ...     x, w = cache
            ...     return dout @ w.T, x.T @ dout
            >>> r = np.random.default_rng(0)
            >>> case = Case.layer("matmul", fwd, bwd, x=r.standard_normal((2, 3)),
            ...                   w=r.standard_normal((3, 4)), oracles=["fd"])
            >>> sorted(case.params), case.options["oracles"]
            (['w', 'x'], ['fd'])
        """
        from ._errors import CheckError
        from ._layer import layer_case

        if "case" in inputs:
            raise CheckError(f"`Case.layer` names its case by its first argument ({name!r}); "
                             f"drop `case={inputs['case']!r}`.")
        return layer_case(cls, name, forward, backward, wrt=wrt, seed=seed, dout=dout,
                          inputs=inputs)
