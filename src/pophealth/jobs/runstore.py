"""The job's output store: lock, atomic writes, run directories, manifests and hashes.

Layout under ``output.dir`` (see :mod:`pophealth.jobs.run`): ``runs/<run_id>/`` (built in a
``runs/.tmp-*`` directory and renamed into place when complete), ``current`` (a symlink
swapped atomically), ``reports/`` and ``.lock``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import PopHealthError
from pophealth.engines.io import atomic_file

__all__ = ["JobLockedError", "output_lock", "read_caseload"]

logger = logging.getLogger("pophealth.jobs.run")  # one logger name for the whole job

_CASELOAD_COLUMNS = ("pseudo_id", "pcn", "practice", "rank", "risk", "tier", "segment", "status",
                     "rule", "reasons", "index_date", "run_id")


class JobLockedError(PopHealthError):
    """Another run holds the output directory's lock (CLI exit 75)."""


@contextlib.contextmanager
def output_lock(output_dir):
    """Hold an exclusive lock on ``output_dir/.lock`` or raise :class:`JobLockedError`.

    Uses ``flock`` where available, so a killed process releases it; elsewhere an
    ``O_CREAT | O_EXCL`` lock file that a stale run leaves behind (delete it by hand).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        fcntl = None
    if fcntl is None:  # pragma: no cover
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise JobLockedError(f"another run holds the lock {path}") from None
        try:
            yield
        finally:
            os.close(fd)
            os.unlink(path)
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise JobLockedError(f"another run holds the lock {path}; try again later") from None
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _hash_path(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative path + content hash, sorted)."""
    if path.is_file():
        files = [path]
        base = path.parent
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith((".", "_")) for part in
                                   p.relative_to(path).parts))
        base = path
    outer = hashlib.sha256()
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
        outer.update(f"{f.relative_to(base).as_posix()}\0{h.hexdigest()}\n".encode())
    return outer.hexdigest()


def _write_table(frame: pd.DataFrame, target: Path, fmt: str) -> Path:
    """Write one output table atomically (temporary sibling, fsync, rename)."""
    with atomic_file(target) as fh:
        if fmt == "csv":
            fh.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        else:
            frame.to_parquet(fh, index=False, compression="zstd")
    return target


def _write_json(obj: dict, target: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    with atomic_file(target) as fh:
        fh.write(text.encode("utf-8"))
    return target


def _safe_name(label) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(label)) or "_"


def read_caseload(run_dir, *, kind: str = "caseload") -> pd.DataFrame:
    """All per-PCN files of one kind (``caseload``, ``changes`` or ``practice``) of a run."""
    folder = Path(run_dir) / kind
    frames = []
    for f in sorted(folder.glob("*")):
        if f.name.startswith("."):
            continue
        if f.suffix == ".csv":
            frames.append(pd.read_csv(f, dtype={"pseudo_id": str, "pcn": str, "practice": str}))
        elif f.suffix == ".parquet":
            frames.append(pd.read_parquet(f))
    if not frames:
        return pd.DataFrame(columns=list(_CASELOAD_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _current_manifest(out: Path) -> dict | None:
    current = out / "current"
    manifest = current / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError:
        data = {}
    if not isinstance(data, dict) or "run_id" not in data:
        logger.warning("job: the current run's manifest is unreadable; treating it as absent")
        return None
    return data


def _previous(out: Path, run_id: str) -> dict | None:
    """Manifest of the run to compare with: the current run, or its predecessor on a rerun."""
    cur = _current_manifest(out)
    if cur is None:
        return None
    if cur["run_id"] != run_id:
        return cur
    prev_id = cur.get("previous_run_id")
    path = out / "runs" / str(prev_id) / "manifest.json"
    if prev_id and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def _clean_leftovers(out: Path) -> int:
    runs = out / "runs"
    n = 0
    if runs.is_dir():
        for p in runs.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    for p in out.glob(".current.*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _versions() -> dict:
    import pyarrow
    import sklearn

    return {"numpy": np.__version__, "pandas": pd.__version__, "pyarrow": pyarrow.__version__,
            "scikit-learn": sklearn.__version__}
