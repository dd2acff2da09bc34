"""`Case`: a named thing to check, as the CLI and the comparison script find it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


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
    """

    name: str
    loss: Callable[..., Any] | Mapping[str, Callable[..., Any]]
    grad: Callable[..., Mapping[str, Any] | tuple[Any, Mapping[str, Any]]]
    params: Mapping[str, Any]
    args: tuple[Any, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
