"""A progress bar for long loss-evaluation work: rich, on a terminal, after a second.

Every phase that evaluates the loss many times runs as a named *stage* -- ``noise`` (the
rounding-noise rays), ``centered differences`` (the first pass, and drilling into a block),
``directional derivatives``, ``refinement`` (the Richardson ladder and kink test) -- and a
stage that lasts longer than ``DELAY`` shows a transient bar with its name, the loss
evaluations done out of its total, and the time left. Stages do not nest; each has its own
bar, removed when it ends (also when it ends by an exception, Ctrl-C included).

Quiet in CI logs (stderr not a terminal) unless asked with ``progress=True``; never shown
with ``progress=False``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Optional, Union

DELAY = 1.0   # seconds of work before a bar appears


class Progress:
    """Counts loss evaluations of the current stage; draws a bar once one lasts ``DELAY``."""

    def __init__(self, enabled: Optional[bool] = None):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.enabled = bool(enabled)
        self._bar = None
        self._task = None
        self._start = 0.0
        self._total = 0
        self._done = 0
        self._label = ""

    @contextlib.contextmanager
    def stage(self, total: int, label: str):
        """Report progress of ``total`` loss evaluations under ``label`` (the phase's name)."""
        self._start, self._total, self._done, self._label = time.perf_counter(), total, 0, label
        try:
            yield self
        finally:
            if self._bar is not None:
                self._bar.stop()
            self._bar = None
            self._total = 0   # advancing outside a stage shows nothing

    def advance(self, elements: int) -> None:
        """``elements`` centered differences done (two loss evaluations each)."""
        self.evaluated(2 * elements)

    def evaluated(self, count: int) -> None:
        """``count`` loss evaluations done; cheap when nothing is shown."""
        if not self.enabled or not self._total:
            return
        self._done = min(self._total, self._done + count)
        if self._bar is None:
            if time.perf_counter() - self._start < DELAY:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar
            from rich.progress import TimeRemainingColumn
            self._bar = Bar(TextColumn("crosscheck: {task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("loss evaluations"),
                            TimeRemainingColumn(), console=Console(stderr=True),
                            transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total)
        self._bar.update(self._task, completed=self._done)


def as_progress(progress: Union[Progress, Optional[bool]]) -> Progress:
    """A :class:`Progress` as given, or one made from the ``progress=`` setting."""
    return progress if isinstance(progress, Progress) else Progress(progress)
