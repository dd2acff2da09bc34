"""``check()``: the pipeline, stage by stage.

prepare → references → refine → agreement → judge and diagnose → localise → assemble. Each stage is a
function in a module of its own, taking the earlier stages' (frozen) outputs and returning
its own; none reaches back into an earlier stage's objects. ``docs/architecture.md`` says
what each passes on.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional, Sequence

from ._agreement import agreement
from ._assemble import assemble, block
from ._judge import judge_block
from ._localise import localise
from ._prepare import prepare, settings
from ._references import run_references
from ._refine import refine
from ._report import Report
from ._taylor import taylor_orders


def check(loss: Any, grad: Any, params: Mapping, *args: Any,
          oracles: Sequence[str] = ("fd", "jax", "torch"),
          tolerances: Optional[Mapping] = None, seed: int = 0, case: Optional[str] = None,
          batch: Optional[int] = None, taylor: bool = True, fd: Any = "auto",
          executor: Any = None, progress: Optional[bool] = None,
          rebind_modules: Sequence[str] = (), locate: Any = "auto") -> Report:
    """Check a hand-written gradient against up to three references, block by block.

    Args:
        loss: ``loss(params, *args) -> scalar``. Written once against the array API
            (``xp = array_namespace(X)``) or in plain numpy, it runs on numpy arrays (centered
            differences), under ``jax.grad`` and under ``torch.autograd``. A dict
            ``{"numpy": f, "jax": g, "torch": h}`` gives per-framework losses instead
            (``numpy`` is required; missing frameworks use the numpy one).
        grad: ``grad(params, *args)``: the hand-written numpy gradient, a dict keyed like
            ``params`` or the seeds' way (``dW1``; extra keys ignored), or ``(loss, dict)``.
        params: dict of named parameter blocks (never modified; checked in float64).
        *args: extra arguments for ``loss`` and ``grad`` (data, labels, hyper-parameters).
        oracles: references to run, among ``fd``, ``jax``, ``torch``.
        tolerances: overrides merged into ``crosscheck._tolerances.DEFAULTS``.
        seed: seeds every random choice (directions of the Taylor test).
        case: a name for the report.
        batch: the batch size m, to call out factors of m or 1/m (guessed from ``args``).
        taylor: run the Taylor remainder test per block.
        fd: centered-difference coverage: ``"auto"`` (every element of a model up to 5,000
            parameters, refined by Richardson extrapolation up to 2,000; on bigger ones, when autodiff covers every element, the elements
            where hand and autodiff disagree, a stratified sample of 32 per block and two
            random directions per block), ``"all"`` (every element, one centered difference
            each, refined where it disagrees), or an int (the per-block sample).
        executor: a ``concurrent.futures.Executor`` or ``dask.distributed.Client`` that
            evaluates centered differences in chunks (results identical to in-process).
        progress: show a progress bar for long centered-difference work (default: on a
            terminal only).
        rebind_modules: library modules (``"sklearn.linear_model"``, a package name covers
            its submodules) whose Python code jax and torch run as the user's own, with
            ``np`` rebound — to check a library's own hand-written gradient. Compiled code
            in them still cannot be differentiated.
        locate: where the error enters the backward: ``"auto"`` checks the intermediates'
            gradients ``grad`` returns besides the parameters' (the seeds' ``dZ1``, ``dA2``)
            or that the forward taps (:func:`crosscheck.tap`), and names the first wrong ones
            with their lines (``report.entry_points``); ``True`` also says why when nothing
            could be located; ``False`` skips it. It never changes a block's verdict.

    Returns:
        A :class:`Report`; ``report.ok``, ``report.flagged``, ``report.blocks[name]``.

    Raises:
        CheckError: input that cannot be checked (the message names the block and the fix).

    Example:
        >>> import numpy as np, crosscheck
        >>> loss = lambda p, x: (p["w"] * x).sum() ** 2
        >>> grad = lambda p, x: {"w": 2 * (p["w"] * x).sum() * x}
        >>> crosscheck.check(loss, grad, {"w": np.array([1.0, 2.0])}, np.array([3.0, -1.0]),
        ...                  oracles=["fd"]).ok
        True
    """
    start = time.perf_counter()
    chosen = settings(oracles=oracles, tolerances=tolerances, seed=seed, case=case, batch=batch,
                      taylor=taylor, fd=fd, executor=executor, progress=progress,
                      rebind_modules=rebind_modules, locate=locate)
    prep = prepare(loss, grad, params, args, chosen)
    refs = run_references(prep)
    refined = refine(prep, refs)
    agreed = agreement(prep, refs, refined)
    judged = {b: judge_block(b, prep, refs, refined, agreed[b]) for b in prep.blocks.names}
    blocks = {b: block(b, prep, refs, refined, agreed[b], judged[b]) for b in prep.blocks.names}
    located = localise(prep, refs, blocks)
    orders = taylor_orders(prep.loss.numpy, prep.blocks, prep.args, prep.hand, prep.f0, prep.noise,
                           seed=seed) if taylor else {}
    return assemble(prep, refs, refined, blocks, orders, time.perf_counter() - start, located)
