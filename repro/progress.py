"""Rich progress display for training."""

from __future__ import annotations

import math
from types import TracebackType
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


class TrainingProgress:
    """A progress bar with bpd, NFE (forward/backward), learning rate and images/s.

    Args:
        console: Where to draw; a quiet or non-terminal console shows nothing.
        total: Iterations the run will do at most (may be infinite).
        start: Iterations already done (when resuming).
    """

    def __init__(self, console: Console, *, total: float, start: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=console.quiet,
        )
        self._task = self._progress.add_task(
            "train", total=None if math.isinf(total) else total, completed=start, status=""
        )

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, row: dict[str, Any]) -> None:
        """Advance one iteration and show its metrics."""
        status = (
            f"bpd {row['bpd']:.4f}  NFE {row['nfe_forward']}/{row['nfe_backward']}  "
            f"lr {row['lr']:.1e}  {row['images_per_second']:.1f} img/s"
        )
        self._progress.update(self._task, advance=1, status=status)
