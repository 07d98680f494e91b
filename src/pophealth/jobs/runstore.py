"""The job's output store: lock, atomic writes, run directories, manifests and hashes.

Layout under ``output.dir`` (see :mod:`pophealth.jobs.run`): ``runs/<run_id>/`` (built in a
``runs/.tmp-*`` directory and renamed into place when complete), ``current`` (a symlink
swapped atomically), ``reports/`` and ``.lock``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import PopHealthError
from pophealth.engines.io import atomic_file
from pophealth.jobs.columns import CASELOAD_COLUMNS
from pophealth.jobs.csvsafe import neutralise_formulas, restore_formulas

__all__ = ["JobLockedError", "output_lock", "read_caseload"]

logger = logging.getLogger("pophealth.jobs.run")  # one logger name for the whole job

_CASELOAD_COLUMNS = CASELOAD_COLUMNS


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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hash_path(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes (what ``sha256sum`` prints), or, for a
    directory (a partitioned dataset), SHA-256 over its files' ``relative path NUL digest
    LF`` lines, sorted, hidden (``.``/``_``) files skipped."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith((".", "_")) for part in
                               p.relative_to(path).parts))
    outer = hashlib.sha256()
    for f in files:
        outer.update(f"{f.relative_to(path).as_posix()}\0{_file_sha256(f)}\n".encode())
    return outer.hexdigest()


def _write_table(frame: pd.DataFrame, target: Path, fmt: str) -> Path:
    """Write one output table atomically (temporary sibling, fsync, rename).

    CSV text cells are formula-safe (:func:`pophealth.jobs.csvsafe.neutralise_formulas`)
    and every non-numeric cell is double-quoted, so a carriage return or line feed inside
    a value can never start a new row (OWASP; RFC 4180).
    """
    with atomic_file(target) as fh:
        if fmt == "csv":
            safe = neutralise_formulas(frame)
            fh.write(safe.to_csv(index=False, lineterminator="\n",
                                 quoting=csv.QUOTE_NONNUMERIC).encode("utf-8"))
        else:
            frame.to_parquet(fh, index=False, compression="zstd")
    return target


def _write_json(obj: dict, target: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    with atomic_file(target) as fh:
        fh.write(text.encode("utf-8"))
    return target


_CODE_COLUMNS = ("pseudo_id", "pcn", "practice")


def _read_one(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    header = pd.read_csv(path, nrows=0).columns
    # codes are text exactly as written ("NA", "None" are codes); an empty code is ""
    frame = pd.read_csv(path, dtype={c: str for c in _CODE_COLUMNS if c in header},
                        keep_default_na=False,
                        na_values={c: [""] for c in header if c not in _CODE_COLUMNS})
    return restore_formulas(frame)


def read_index(run_dir) -> pd.DataFrame | None:
    """A run's ``index.csv`` (kind, code, missing, file, rows), or ``None`` if it has none."""
    path = Path(run_dir) / "index.csv"
    if not path.is_file():
        return None
    index = restore_formulas(pd.read_csv(path, dtype={"kind": str, "code": str, "file": str},
                                         keep_default_na=False))
    return index


def read_caseload(run_dir, *, kind: str = "caseload") -> pd.DataFrame:
    """All per-PCN (or per-practice) files of one kind of a run, concatenated.

    Parameters
    ----------
    run_dir : path
        A run directory (``output.dir/current`` or ``output.dir/runs/<run_id>``).
    kind : {"caseload", "changes", "practice"}

    Returns
    -------
    DataFrame
        Files are found through the run's ``index.csv`` (code -> file), so every list is
        read - including the ``unknown-pcn`` list - whatever its code. CSV cells escaped
        against formula injection are restored (one leading ``'`` stripped from text
        cells); ``pseudo_id``, ``pcn`` and ``practice`` are read as text exactly as
        written (a missing code is ``""``). Runs written before ``index.csv`` existed
        are read by listing the folder.

    Raises
    ------
    FileNotFoundError
        A file named in the index is missing.

    Examples
    --------
    >>> import tempfile
    >>> from pophealth.jobs import demo_job, read_caseload
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = demo_job(tmp, n_patients=2_000)
    ...     len(read_caseload(res.run_dir)) == res.manifest["counts"]["caseload_rows"]
    True
    """
    if kind not in ("caseload", "changes", "practice"):
        raise ValueError(f"read_caseload: kind must be 'caseload', 'changes' or 'practice', "
                         f"not {kind!r}")
    run = Path(run_dir)
    index = read_index(run)
    if index is not None:
        paths = [run / f for f in index.loc[index["kind"] == kind, "file"]]
    else:  # a run written before index.csv: every table file in the folder
        paths = sorted(p for p in (run / kind).glob("*")
                       if p.is_file() and p.suffix in (".csv", ".parquet"))
    frames = [_read_one(p) for p in paths]
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
