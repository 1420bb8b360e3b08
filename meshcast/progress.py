"""Progress of long steps that shows both on a terminal and in a log.

On a terminal a step draws a live bar (rich). Written to a file, a pipe or ``nohup``, a live
bar shows nothing until it ends, so there a step prints a line every :data:`LOG_INTERVAL_S`
seconds instead, and one at its end (a step that ends sooner prints nothing):

    training: 300/800 (38 %), 4.1/s, 2:02 left, loss 7.84
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from rich.console import Console
from rich.progress import Progress, ProgressColumn, Task, TaskID

LOG_INTERVAL_S: Final = 10.0


def progress_bar(
    *columns: str | ProgressColumn,
    console: Console | None = None,
    transient: bool = False,
    disable: bool = False,
) -> Progress:
    """A rich :class:`Progress` on ``console`` (default: stderr) when it is a terminal, else a
    :class:`LoggedProgress`; ``columns``, ``transient`` and ``disable`` as rich's."""
    console = console or Console(stderr=True)
    if disable or console.is_terminal:
        return Progress(*columns, console=console, transient=transient, disable=disable)
    return LoggedProgress(console)


class LoggedProgress(Progress):
    """A :class:`Progress` that draws no bar but prints each task's state as a line every
    ``interval`` seconds, and at the end of a task that printed one."""

    def __init__(self, console: Console, interval: float = LOG_INTERVAL_S) -> None:
        super().__init__(console=console, disable=True)
        self.interval = interval
        self._last_line: dict[TaskID, float] = {}  # monotonic time of a task's last line

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._maybe_print(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_print(task_id)

    def stop(self) -> None:
        for task_id in list(self._last_line):
            self.console.print(self._line(self._tasks[task_id]), markup=False, highlight=False)
        self._last_line.clear()
        super().stop()

    def _maybe_print(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        now = time.monotonic()
        since = self._last_line.get(task_id, task.start_time or now)
        if now - since >= self.interval:
            self._last_line[task_id] = now
            self.console.print(self._line(task), markup=False, highlight=False)

    @staticmethod
    def _line(task: Task) -> str:
        """``description: done/total (share), rate, time left, fields``."""
        parts = [f"{task.description}: {task.completed:g}"]
        if task.total is not None:
            parts[0] += f"/{task.total:g} ({task.percentage:.0f} %)"
        if task.speed:
            parts.append(f"{task.speed:.3g}/s")
        if task.time_remaining is not None and task.total is not None:
            parts.append(f"{_clock(task.time_remaining)} left")
        for name, value in task.fields.items():
            parts.append(f"{name} {_number(value)}")
        return ", ".join(parts)


def _number(value: object) -> str:
    """A field's value: 4 significant digits where it is a finite number (a float, a 0-d
    tensor), else as it prints."""
    try:
        return f"{float(value):.4g}" if math.isfinite(float(value)) else str(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def _clock(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
