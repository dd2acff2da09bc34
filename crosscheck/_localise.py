"""Stage 6, localise: where in the backward the error enters, added to the judged blocks.

Runs only when there is something to localise: the hand-written ``grad`` returned gradients of
intermediates besides the parameters' (the seeds' ``dZ3``, ``dA2`` …, keyed ``"d" + name``),
or the forward calls :func:`crosscheck.tap` (``check(..., locate=True)`` always tries and says
why when nothing could be located; ``locate=False`` never runs it).

What it costs, and why it is cheap. The parameter quantities are not differentiated again:
their verdicts come from the judged blocks (``ok`` → right, ``wrong`` → wrong,
``inconclusive`` → unsure) -- localisation adds to the blocks, it never re-judges them. Only
the taps' offsets are differentiated: by one autodiff reference that ran and decides (one
more backward pass), and by centered differences only when no autodiff reference decides
(four loss calls per tapped element, so refused beyond ``BUDGETS["tap_fd_max"]`` elements).

Failure is a note. Whatever goes wrong here -- a forward that cannot be tapped, a tap of the
wrong shape, a framework that cannot run the tapped copy -- the block verdicts are already
final; the report gains a note ``could not locate: …`` and no localisation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

from . import oracles as registry
from ._entry_points import assigning_function, judge_quantities, untapped
from ._errors import CheckError
from ._backward_lines import traced
from ._inputs import batch_size, unpack_grad
from ._prepare import Prepared
from ._references import References
from ._report import Block
from ._tap_gradients import RUNNERS, Tapped
from ._taps import TAP, code_names, reached
from ._tolerances import BUDGETS
from ._user_calls import private_copy
from .oracles._base import library_scope

#: ``blocks[name].verdict`` → the verdict of its quantity.
VERDICTS = {"ok": "right", "wrong": "wrong", "inconclusive": "unsure"}

#: Autodiff references for the taps, cheapest first: torch's eager backward costs about one
#: forward and one backward; jax traces the tapped loss again before it finds (or compiles)
#: its executable. Measured on the 16,641-parameter MLP (scripts/bench.py --taps): a check
#: with taps cost 1.34× the check without when jax and torch both ran on the taps, 1.04× with torch.
CHEAPEST = ("torch", "jax")

NOTHING = ("nothing to locate: `grad` returned no gradient of an intermediate besides the "
           "parameters' (a key `dX` for an intermediate `X` of the forward, as the seeds' "
           "`dZ1`) and the forward calls no `crosscheck.tap`; return the intermediates' "
           "gradients from `grad` to see where an error enters.")


def localise(prep: Prepared, refs: References, blocks: Mapping[str, Block]) -> tuple:
    """Stage 6: ``(Localisation or None, notes for the report)``; never raises for the user's code."""
    if prep.settings.locate is False:
        return None, ()
    try:
        return _localise(prep, refs, blocks, asked=prep.settings.locate is True)
    except Exception as exc:  # noqa: BLE001 - the blocks are final: any failure here is a note
        text = str(exc).strip() or type(exc).__name__
        return None, (f"could not locate: {text}",)


def _calls_tap(loss) -> bool:
    """Whether any of the user's functions the loss reaches names ``tap`` (read, not run)."""
    return any({"tap", TAP} & code_names(fn.__code__) for fn in reached(loss))


def _localise(prep: Prepared, refs: References, blocks: Mapping, asked: bool) -> tuple:
    wanted = {key[1:]: key for key in prep.intermediates}
    loss = prep.loss.numpy
    if not wanted and not _calls_tap(loss):
        return None, ((NOTHING,) if asked else ())
    notes: list = []
    forward = assigning_function(loss, wanted, None) if wanted else None
    tapped = Tapped(loss, forward, list(wanted), notes)
    params = prep.blocks.copy().as_dict()
    shapes = tapped.shapes(params, prep.args)
    taps = {n: s for n, s in shapes.items() if n in wanted}
    if not taps:
        loops = untapped(wanted, {}, loss, loops_only=True)
        return None, _why_not(wanted, shapes, [*loops, *notes], asked, forward is not None)
    notes.extend(untapped(wanted, taps))
    estimates = _tap_gradients(prep, refs, tapped, params, taps, notes)
    hands = {**{prep.grad_keys[b]: prep.hand[b] for b in prep.blocks.names}, **prep.intermediates}
    param_keys = {prep.grad_keys[b]: b for b in prep.blocks.names}
    given = {prep.grad_keys[b]: _given(blocks[b]) for b in prep.blocks.names}
    batch = prep.settings.batch or batch_size(prep.args)
    found = judge_quantities(hands, param_keys, wanted, taps, estimates,
                             assigning_function(prep.grad, hands, None), notes, given,
                             prep.settings.table, traced=_lines(prep), batch=batch)
    return dataclasses.replace(found, batch=batch), ()


def _why_not(wanted: Mapping, shapes: Mapping, notes: list, asked: bool,
             found: bool = True) -> tuple:
    """Why nothing was located, as notes: said in ``auto`` only when the user tapped by hand.
    ``found``: whether a function the loss reaches assigns any of the names at all."""
    if shapes:
        taps = ", ".join(f"`{n}`" for n in shapes)
        grads = ", ".join(f"`d{n}`" for n in shapes)
        return (f"could not locate: the forward taps {taps}, but `grad` returns no {grads}: "
                f"return them to see where an error enters.", *notes)
    if not asked:
        # auto: the extra keys may name no intermediate at all (an input's gradient, a cache):
        # only a name the forward assigns several times is worth a word (tap it by hand)
        return tuple(notes)
    keys = ", ".join(f"`{k}`" for k in wanted.values())
    first = next(iter(wanted))
    if not found:
        return (f"could not locate: `grad` returned {keys} besides the parameters' gradients, but "
                f"no function the loss reaches (through globals, closures and the methods of "
                f"a bound-method loss's own object) assigns {', '.join(f'`{n}`' for n in wanted)}"
                f": add `crosscheck.tap(\"{first}\", {first})` in the forward.", *notes)
    return (f"could not locate: `grad` returned {keys} besides the parameters' gradients, but "
            f"the forward assigns none of {', '.join(f'`{n}`' for n in wanted)} once by a plain "
            f"assignment and taps none of them: add `crosscheck.tap(\"{next(iter(wanted))}\", "
            f"{next(iter(wanted))})` in the forward.", *notes)


def _lines(prep: Prepared) -> dict:
    """Where the backward computed each returned quantity, found by running ``grad`` once more
    under a line tracer (loops included: ``grads["dW" + str(l)] = …``); the source alone is
    read where this finds nothing."""
    run = lambda: unpack_grad(prep.grad(prep.blocks.copy().as_dict(),   # noqa: E731
                                        *private_copy(prep.args)))
    return traced(run)[1]


def _given(block: Block) -> tuple:
    """A judged block as its quantity's ``(verdict, factor, differences)``: the block decides."""
    d = block.diagnosis
    factor = 1.0 if block.verdict == "ok" else (
        d.factor if d is not None and d.kind in ("scale", "sign") else None)
    return VERDICTS[block.verdict], factor, dict(block.difference)


def _tap_gradients(prep: Prepared, refs: References, tapped: Tapped, params, taps, notes) -> dict:
    """``{reference: (gradients by tap, errors or None)}`` from one reference.

    One autodiff reference that decides (ran, with forward parity) and runs the numpy loss as
    written, the cheapest first (:data:`CHEAPEST`): autodiff is exact, and the blocks have
    already shown that the references agree, so a second one would double the cost and add
    nothing. Centered differences only when no autodiff reference decides.
    """
    usable = [r for r in refs.deciding if r in RUNNERS
              and (r == "fd" or prep.loss.for_framework(r)[1] == "shared")]
    autodiff = sorted((r for r in usable if r in registry.autodiff()), key=CHEAPEST.index)
    chosen = autodiff[:1] or [r for r in usable if r == "fd"]
    if not chosen:
        raise CheckError("no reference that can differentiate the taps decided "
                         "(jax or torch on the numpy loss as written, or centered differences).")
    size = sum(math.prod(s) for s in taps.values())
    if chosen == ["fd"] and size > BUDGETS["tap_fd_max"]:
        raise CheckError(f"the intermediates hold {size:,} elements, too many for centered "
                         f"differences alone (four loss calls each; at most "
                         f"{BUDGETS['tap_fd_max']:,}): add an autodiff reference (jax or torch).")
    estimates = {}
    with library_scope(prep.problem):
        for r in chosen:
            try:
                estimates[r] = RUNNERS[r](tapped, params, prep.args, taps, with_params=False)
            except Exception as exc:  # noqa: BLE001 - one reference's failure leaves the others
                if len(chosen) == 1:
                    raise
                notes.append(f"{r} could not differentiate the taps: {str(exc).strip() or type(exc).__name__}")
    if not estimates:
        raise CheckError("no reference could differentiate the taps: " + "; ".join(notes[-len(chosen):]))
    return estimates
