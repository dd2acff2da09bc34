"""Stage 1, prepare: validate everything once, at the door, and compute what every stage needs.

Every option of :func:`crosscheck.check` is checked here (:func:`settings`) -- and the same
function serves ``check_layer``, the command line and suite tables, so an option means the
same and is refused with the same words everywhere. Then the inputs become private float64
blocks, the loss is evaluated at the check point (refusing one that is not deterministic or
that writes into its inputs), the hand-written gradient is called (likewise), and the loss's
rounding noise is measured. Everything after this stage trusts the data.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import oracles as registry
from ._errors import CheckError
from ._inputs import (Blocks, Loss, prepare_args, prepare_loss, prepare_params, refuse_unencodable,
                      scalar_loss)
from ._tolerances import merged
from ._user_calls import base_loss, hand_gradient
from .oracles import Problem
from .oracles._fd import element_scales, loss_caller, measure_noise


@dataclass(frozen=True)
class Settings:
    """The check's options, validated: what the user asked for."""

    oracles: tuple
    table: Mapping          # the tolerance table, overrides merged in
    seed: int
    case: Optional[str]
    batch: Optional[int]
    taylor: bool
    fd: Any                 # "auto", "all" or a positive int
    executor: Any
    progress: Optional[bool]
    rebind_modules: tuple
    locate: Any = "auto"    # "auto", True or False: check the backward's intermediates


def validate_oracles(oracles: Any, where: Optional[str] = None) -> tuple:
    """``oracles`` as a tuple of registered names (a comma-separated string is accepted).

    ``where`` names the place in a suite table or on the command line the value came from.
    """
    given = oracles
    if isinstance(oracles, str):
        oracles = [o.strip() for o in oracles.split(",") if o.strip()]
    if where is not None:
        if (not isinstance(oracles, list) or not oracles
                or not all(isinstance(v, str) and v in registry.names() for v in oracles)):
            raise CheckError(f"{where}: `oracles` must be a non-empty list among "
                             f"{', '.join(registry.names())}, got {given!r}.")
    if isinstance(oracles, (Mapping, bytes)) or not hasattr(oracles, "__iter__"):
        raise CheckError(f"`oracles` must be a list of oracle names among "
                         f"{', '.join(registry.names())} (or one comma-separated string), got "
                         f"{type(given).__name__} {given!r}; pass e.g. `oracles=('fd', 'jax')`.")
    oracles = list(oracles)
    unknown = [o for o in oracles if not isinstance(o, str) or o not in registry.names()]
    if unknown or not oracles:
        raise CheckError(f"unknown oracle(s) {unknown or oracles!r}; choose from "
                         f"{', '.join(registry.names())}.")
    return tuple(dict.fromkeys(oracles))


def validate_fd(fd: Any, where: Optional[str] = None) -> Any:
    """``fd``: ``"auto"``, ``"all"`` or a positive int (elements sampled per block).

    From a suite table or the command line (``where`` names it), digits are a number.
    """
    if where is not None and isinstance(fd, str) and fd.isdigit():
        fd = int(fd)
    if isinstance(fd, np.integer):
        fd = int(fd)
    if (isinstance(fd, str) and fd in ("auto", "all")) or (
            isinstance(fd, int) and not isinstance(fd, bool) and fd > 0):
        return fd
    if where is not None:
        raise CheckError(f"{where}: `fd` must be \"auto\", \"all\" or a positive integer "
                         f"(elements sampled per block), got {fd!r}.")
    raise CheckError(f"`fd` must be 'auto', 'all' or a positive int (elements sampled per "
                     f"block), got {fd!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def validate_seed(seed: Any, where: Optional[str] = None) -> int:
    """``seed``: a non-negative integer (numpy integers too); ``where`` names its source."""
    if _is_int(seed) and seed >= 0:
        return int(seed)
    prefix = f"{where}: " if where is not None else ""
    raise CheckError(f"{prefix}`seed` must be a non-negative integer, got "
                     f"{type(seed).__name__} {seed!r}; it seeds every random choice of the "
                     f"check, so that a run can be repeated: pass e.g. `seed=0`.")


def validate_executor(executor: Any) -> Any:
    """``executor``: ``None``, a ``concurrent.futures`` executor or a Dask client (anything
    with a callable ``submit``)."""
    if executor is None or callable(getattr(executor, "submit", None)):
        return executor
    hint = (" (a name is not an executor)" if isinstance(executor, str) else "")
    raise CheckError(
        f"`executor` must be a `concurrent.futures` executor or a Dask client, got "
        f"{type(executor).__name__} {executor!r}{hint}; pass e.g. "
        f"`concurrent.futures.ThreadPoolExecutor(4)`, or the client of a Dask cluster: "
        f"`cluster, client = crosscheck.local_cluster(4)` then `executor=client`.")


def validate_locate(locate: Any, where: Optional[str] = None) -> Any:
    """``locate``: ``"auto"`` (where the grad returns intermediates or the forward taps),
    ``True`` (always try, and say why when nothing could be located) or ``False`` (never)."""
    if isinstance(locate, (bool, np.bool_)):
        return bool(locate)
    if isinstance(locate, str) and locate == "auto":
        return locate
    prefix = f"{where}: " if where is not None else ""
    raise CheckError(f"{prefix}`locate` must be \"auto\", True or False, got "
                     f"{type(locate).__name__} {locate!r}; \"auto\" checks the backward's "
                     f"intermediates (`dZ1`, …) when `grad` returns them, True always tries, "
                     f"False never does.")


def _validate_case(case: Any) -> Optional[str]:
    if case is None:
        return None
    if not isinstance(case, str):
        raise CheckError(f"`case` must be a string naming the report (or None), got "
                         f"{type(case).__name__} {case!r}; pass e.g. `case='mlp/relu'`.")
    refuse_unencodable(case, f"`case` {case!r}",
                       "so no report could name it: pass a name of ordinary characters.")
    return case


def settings(*, oracles: Sequence[str] = ("fd", "jax", "torch"),
             tolerances: Optional[Mapping] = None, seed: int = 0, case: Optional[str] = None,
             batch: Optional[int] = None, taylor: bool = True, fd: Any = "auto",
             executor: Any = None, progress: Optional[bool] = None,
             rebind_modules: Sequence[str] = (), locate: Any = "auto") -> Settings:
    """Every option of ``check``, validated; raises :class:`CheckError` naming the bad one."""
    names = validate_oracles(oracles)
    fd = validate_fd(fd)
    table = types.MappingProxyType(merged(tolerances))
    seed = validate_seed(seed)
    case = _validate_case(case)
    if batch is not None:
        if not _is_int(batch) or batch < 1:
            raise CheckError(f"`batch` must be the batch size m, a positive integer (or None to "
                             f"guess it from the arguments), got {type(batch).__name__} "
                             f"{batch!r}; pass e.g. `batch=X.shape[1]`.")
        batch = int(batch)
    for name, value, allowed in (("taylor", taylor, "True or False"),
                                 ("progress", progress, "True, False or None (on a terminal)")):
        if not (isinstance(value, (bool, np.bool_)) or (name == "progress" and value is None)):
            raise CheckError(f"`{name}` must be {allowed}, got {type(value).__name__} "
                             f"{value!r}.")
    taylor = bool(taylor)
    progress = None if progress is None else bool(progress)
    executor = validate_executor(executor)
    modules = (None if isinstance(rebind_modules, (str, bytes, Mapping))
               or not hasattr(rebind_modules, "__iter__") else list(rebind_modules))
    if modules is None or not all(isinstance(m, str) and m for m in modules):
        raise CheckError(f"`rebind_modules` must be a list of module names such as "
                         f"['sklearn.linear_model'], got {rebind_modules!r}.")
    return Settings(names, table, seed, case, batch, taylor, fd, executor, progress,
                    tuple(modules), validate_locate(locate))


@dataclass(frozen=True)
class Prepared:
    """What every later stage needs: clean inputs, the hand-written gradient, the noise."""

    settings: Settings
    loss: Loss
    grad: Any
    blocks: Blocks
    args: tuple
    f0: float                    # the numpy loss at the check point
    noise: float                 # its measured rounding noise
    hand: Mapping                # block -> float64 hand-written gradient
    hand_rtol: Mapping           # block -> relative rounding allowed (float32/float16 blocks)
    notes: tuple
    problem: Problem             # what the oracles receive
    grad_keys: Mapping = field(default_factory=dict)       # block -> its key in grad's dict (``dW1``)
    intermediates: Mapping = field(default_factory=dict)   # grad's other keys (``dZ1``), float64


def prepare(loss: Any, grad: Any, params: Any, args: tuple, chosen: Settings) -> Prepared:
    """Validate the inputs, evaluate the loss and the hand-written gradient at the check point."""
    spec = prepare_loss(loss)
    blocks = prepare_params(params)
    args = prepare_args(args)
    notes = list(blocks.notes)
    f0 = base_loss(spec.numpy, blocks, args)
    hand, hand_loss, hand_notes, low, (keys, extra) = hand_gradient(grad, blocks, args)
    notes += hand_notes
    # a float32/float16 hand-written block carries its own rounding: allow 64 ulps of it
    hand_rtol = {b: 64 * float(np.finfo(np.dtype(dt)).eps) for b, dt in low.items()}
    for b, dt in low.items():
        notes.append(f"`grad` returned {dt} for block `{b}`; compared in float64 with its "
                     f"{dt} rounding allowed (relative {hand_rtol[b]:.1e}).")
    work = blocks.copy()
    call = loss_caller(spec.numpy, work.as_dict(), args, spec.numpy(work.as_dict(), *args))
    noise = measure_noise(call, work.flat, element_scales(blocks), f0, seed=chosen.seed,
                          progress=chosen.progress)
    if hand_loss is not None:
        value = scalar_loss(hand_loss, "as returned by `grad`")
        if abs(value - f0) > chosen.table["parity_rtol"] * abs(f0) + 1e3 * noise:
            notes.append(f"`grad` returned loss {value!r} but `loss` computes {f0!r}: are they "
                         f"the same model?")
    options = {"seed": chosen.seed, "fd": chosen.fd, "executor": chosen.executor,
               "progress": chosen.progress, "rebind_modules": chosen.rebind_modules}
    problem = Problem(spec, blocks, args, f0, noise, options)
    return Prepared(chosen, spec, grad, blocks, args, f0, noise, types.MappingProxyType(hand),
                    types.MappingProxyType(hand_rtol), tuple(notes), problem,
                    types.MappingProxyType(keys), types.MappingProxyType(extra))
