"""Measurement helpers for the benchmark scripts: wall time and peak RSS of a stage."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


class Stage:
    """Result holder filled by :func:`measure`."""

    seconds: float = 0.0
    peak_rss: int = 0
    start_rss: int = 0


@contextmanager
def measure(interval: float = 0.005):
    """Time a block and sample RSS in a background thread to find its peak."""
    stage = Stage()
    stage.start_rss = rss_bytes()
    peak = [stage.start_rss]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield stage
    finally:
        stage.seconds = time.perf_counter() - t0
        stop.set()
        thread.join()
        stage.peak_rss = max(peak[0], rss_bytes())


def gib(n: int) -> float:
    return round(n / 2**30, 3)
