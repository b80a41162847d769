"""A Reporter that draws rich progress bars in the terminal (used by the CLI)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas.progress import Reporter
from nas.schemas import Candidate


class ConsoleReporter(Reporter):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.fields[phase]:<8}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ConsoleReporter:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def phase(self, name: str, total: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name, total=total, phase=name, info="")

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        self.phase(name, total)
        info = "  ".join(f"{k} {_fmt(v)}" for k, v in (metrics or {}).items() if k != "lr")
        self.bar.update(self.tasks[name], completed=step, total=total, info=info)

    def message(self, text: str, **data: Any) -> None:
        self.bar.console.print(f"[cyan]{text}")

    def candidate(self, candidate: Candidate) -> None:
        pass


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"
