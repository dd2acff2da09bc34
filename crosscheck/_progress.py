"""A progress bar for long centered-difference work: rich, on a terminal, after a second.

Quiet in CI logs (stderr not a terminal) unless asked with ``progress=True``; never shown
with ``progress=False``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Optional

DELAY = 1.0   # seconds of work before a bar appears


class Progress:
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
        """Report progress of ``total`` loss evaluations under ``label``."""
        self._start, self._total, self._done, self._label = time.perf_counter(), total, 0, label
        try:
            yield self
        finally:
            if self._bar is not None:
                self._bar.stop()
            self._bar = None

    def advance(self, elements: int) -> None:
        """Called by the evaluation loops; cheap when nothing is shown."""
        if not self.enabled or not self._total:
            return
        self._done = min(self._total, self._done + 2 * elements)
        if self._bar is None:
            if time.perf_counter() - self._start < DELAY:
                return
            from rich.console import Console
            from rich.progress import Progress as Bar
            self._bar = Bar(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total)
        self._bar.update(self._task, completed=self._done)
