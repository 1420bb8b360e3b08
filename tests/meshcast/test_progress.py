"""Progress that shows in a log: a line every interval where a live bar would show nothing."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from meshcast.progress import LoggedProgress, progress_bar


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200), out


def test_a_terminal_gets_a_live_bar_and_a_log_gets_lines() -> None:
    terminal, _ = console(True)
    assert not isinstance(progress_bar(console=terminal), LoggedProgress)
    assert isinstance(progress_bar(console=terminal), Progress)
    log, _ = console(False)
    assert isinstance(progress_bar(console=log), LoggedProgress)
    assert not isinstance(progress_bar(console=log, disable=True), LoggedProgress)


def test_each_interval_prints_the_state_and_the_end_prints_the_last() -> None:
    log, out = console(False)
    with LoggedProgress(log, interval=0.0) as progress:
        task = progress.add_task("posing clips", total=4, loss=float("nan"))
        for step in range(4):
            progress.update(task, advance=1, loss=7.5 - step)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("posing clips: 1/4 (25 %)")
    assert lines[0].endswith("loss 7.5")
    assert lines[3].startswith("posing clips: 4/4 (100 %)")
    assert lines[-1] == lines[3]  # the end repeats the last state
    assert len(lines) == 5


def test_a_step_shorter_than_the_interval_prints_nothing() -> None:
    log, out = console(False)
    with LoggedProgress(log, interval=3600.0) as progress:
        task = progress.add_task("quick", total=2)
        progress.advance(task)
        progress.advance(task)
    assert out.getvalue() == ""


def test_an_open_ended_step_counts_without_a_total() -> None:
    log, out = console(False)
    with LoggedProgress(log, interval=0.0) as progress:
        task = progress.add_task("fetch", total=None)
        progress.update(task, completed=2048)
    assert out.getvalue().splitlines()[0] == "fetch: 2048"
