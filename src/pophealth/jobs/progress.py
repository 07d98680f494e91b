"""A stage progress bar for the stratification job (tqdm, on stderr).

The job's long steps - reading inputs, scoring, fitting the risk model, segmenting,
selecting and writing - are each one tick of a bar described by the step now running,
so a long run on a terminal shows where it is. The bar carries step names only, never
data.
"""

from __future__ import annotations

import sys

__all__ = ["STAGES", "StageBar"]

#: The job's steps, in order (a skipped step, e.g. no risk model, still ticks).
STAGES = ("check inputs", "read", "score", "risk", "segments", "select", "write", "publish")


class StageBar:
    """A tqdm bar over named stages; :meth:`start` marks the beginning of a stage.

    Parameters
    ----------
    stages : sequence of str
        Stage names in order.
    show : bool, optional
        Draw the bar; ``None`` draws it only when stderr is a terminal.
    desc : str, default "stratify"

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with StageBar(["read", "write"], show=True, file=out) as bar:
    ...     bar.start("read")
    ...     bar.start("write")
    >>> "stratify: write" in out.getvalue() and "2/2" in out.getvalue()
    True
    """

    def __init__(self, stages, *, show: bool | None = None, desc: str = "stratify",
                 file=None) -> None:
        from tqdm.auto import tqdm

        self.stages = list(stages)
        self.desc = desc
        self._done = 0
        show = sys.stderr.isatty() if show is None else show
        self._bar = tqdm(total=len(self.stages), desc=desc, unit="step", disable=not show,
                         file=file, bar_format="{desc}: {n_fmt}/{total_fmt} {bar} [{elapsed}]")

    def start(self, stage: str) -> None:
        """Mark the stages before ``stage`` done and show ``stage`` as running."""
        pos = self.stages.index(stage)  # ValueError for an unknown stage: a programming error
        self._bar.update(max(pos - self._done, 0))
        self._done = max(self._done, pos)
        self._bar.set_description_str(f"{self.desc}: {stage}")

    def close(self) -> None:
        """Mark every stage done and close the bar."""
        self._bar.update(len(self.stages) - self._done)
        self._done = len(self.stages)
        self._bar.close()

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._bar.close()
