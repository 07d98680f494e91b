"""The scheduled stratification job: TOML config in, per-PCN MDT caseload lists out.

:func:`run_job` reads a register, coded events and activity (Parquet files, partitioned
Parquet datasets or CSV), scores indices, predicts risk, assigns segments, selects the
caseload with named rules and writes, under ``output.dir``::

    runs/<run_id>/caseload/<pcn>.csv      one ranked list per PCN (pseudo ids only)
    runs/<run_id>/practice/<practice>.csv optional, one per practice
    runs/<run_id>/changes/<pcn>.csv       who is new and who left since the previous run
    runs/<run_id>/manifest.json           written last: versions, hashes, counts, key
                                          fingerprint, index_date, run id
    current -> runs/<run_id>              swapped atomically when the run is complete

Guarantees: the config is checked (unknown keys are errors) and the pseudonymisation key
loaded before any data is read; a lock refuses a concurrent run on the same output; a
run is built in a temporary directory and renamed into place only when complete
(manifest last), so a killed run never leaves a truncated list and the previous run stays
intact (the next run removes the leftovers); the run id is a hash of the pophealth
version, the config, the input bytes and the key fingerprint, and rows are sorted by a
stable key, so rerunning the same inputs gives identical content. Logs, errors and
reports carry counts, column and rule names only - never identifiers. Output is
pseudonymised, not anonymised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.cohorts import SelectionRule, select_caseload
from pophealth.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)
from pophealth.pseudonymise import key_fingerprint, load_key, pseudonymise

__all__ = ["JobConfig", "JobResult", "JobLockedError", "DataQualityError", "run_job",
           "output_lock", "read_caseload"]

logger = logging.getLogger(__name__)

_SCHEMA: dict = {
    "": {"index_date": "date", "name": str},
    "inputs": {"register": str, "events": str, "activity": str, "outcomes": str},
    "codelists": None,  # index name -> code list name or "none"
    "risk": {"model": str, "fit": dict, "tier_cuts": list},
    "risk.fit": {"method": str, "calibration": str, "outcome": str, "random_state": int,
                 "max_rows": int},
    "segments": {"enabled": bool, "rules": str},
    "output": {"dir": str, "per_practice": bool, "format": str, "include_columns": list,
               "rank_by": str},
    "pseudonymisation": {"key_env": str, "id_column": str, "allow_key_rotation": bool},
    "quality": {"max_invalid_id_fraction": float, "max_unrecognised_code_fraction": float,
                "max_unknown_patient_activity_fraction": float},
}
_SECTIONS = {"inputs", "codelists", "risk", "segments", "rules", "output", "pseudonymisation",
             "quality"}
_INDICES = {"charlson", "elixhauser", "hfrs", "efi", "cms"}
_IDENTIFIERS = {"nhs_number", "patient_id", "date_of_birth", "name", "forename", "surname",
                "address", "postcode", "telephone", "email"}
_CASELOAD_COLUMNS = ("pseudo_id", "pcn", "practice", "rank", "risk", "tier", "segment", "status",
                     "rule", "reasons", "index_date", "run_id")


class JobLockedError(PopHealthError):
    """Another run holds the output directory's lock (CLI exit 75)."""


class DataQualityError(SchemaError):
    """Input data broke a quality threshold; a report was written and nothing published.

    Attributes
    ----------
    report_path : Path or None
    """

    def __init__(self, message: str, problems: list | None = None, report_path=None):
        super().__init__(message, problems)
        self.report_path = report_path


def _check_table(table: dict, section: str) -> None:
    spec = _SCHEMA[section]
    where = f"[{section}]" if section else "top level"
    for key, value in table.items():
        if section == "" and key in _SECTIONS:
            continue
        if key not in spec:
            allowed = sorted(spec) + (sorted(_SECTIONS) if section == "" else [])
            raise ConfigError(f"unknown key '{key}' in {where} (allowed: {', '.join(allowed)})")
        kind = spec[key]
        if kind == "date":
            ok = isinstance(value, str) or hasattr(value, "isoformat")
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"key '{key}' in {where} has the wrong type "
                              f"(expected {getattr(kind, '__name__', kind)})")


@dataclass(frozen=True)
class JobConfig:
    """A validated stratification job. Build it with :meth:`from_toml` or :meth:`from_dict`.

    Relative input and output paths are resolved against ``base_dir`` (the TOML file's
    directory). See ``examples/job.toml`` for every key.

    Examples
    --------
    >>> from pophealth.jobs import JobConfig
    >>> cfg = JobConfig.from_dict({
    ...     "index_date": "2025-04-01",
    ...     "inputs": {"register": "r.parquet", "events": "e.parquet", "activity": "a.parquet"},
    ...     "risk": {"model": "model.joblib"},
    ...     "rules": [{"name": "top 2% risk", "top_fraction": 0.02, "by": "practice"}],
    ...     "output": {"dir": "out"},
    ...     "pseudonymisation": {"key_env": "POPHEALTH_KEY"}}, base_dir="/data")
    >>> cfg.output_dir.as_posix(), len(cfg.config_hash)
    ('/data/out', 64)
    >>> JobConfig.from_dict({"index_date": "2025-04-01", "colour": "blue"})
    Traceback (most recent call last):
    ...
    pophealth.exceptions.ConfigError: unknown key 'colour' in top level (allowed: index_date, name, codelists, inputs, output, pseudonymisation, quality, risk, rules, segments)
    """

    index_date: pd.Timestamp
    inputs: dict
    output_dir: Path
    rules: tuple
    key_env: str
    raw: dict = field(repr=False)
    name: str = "caseload"
    codelists: dict = field(default_factory=dict)
    risk_model: Path | None = None
    risk_fit: dict | None = None
    tier_cuts: tuple = (0.005, 0.05, 0.2)
    segments: bool = True
    segment_rules: str = "bridges_to_health"
    per_practice: bool = False
    format: str = "csv"
    include_columns: tuple = ()
    rank_by: str = "risk"
    id_column: str = "nhs_number"
    allow_key_rotation: bool = False
    quality: dict = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of the config as written, without ``output.dir``
        (where a run is written does not change what it contains)."""
        raw = dict(self.raw)
        raw["output"] = {k: v for k, v in raw.get("output", {}).items() if k != "dir"}
        text = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_toml(cls, path) -> JobConfig:
        """Read and validate a TOML file (relative paths are relative to the file)."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(raw, base_dir=path.parent)

    @classmethod
    def from_dict(cls, raw: dict, *, base_dir=".") -> JobConfig:
        """Validate a parsed config; every problem is a :class:`ConfigError`."""
        base = Path(base_dir)
        _check_table(raw, "")
        for sec in ("inputs", "risk", "segments", "output", "pseudonymisation", "quality"):
            if sec in raw:
                if not isinstance(raw[sec], dict):
                    raise ConfigError(f"[{sec}] must be a table")
                _check_table(raw[sec], sec)
        if "fit" in raw.get("risk", {}):
            _check_table(raw["risk"]["fit"], "risk.fit")
        if "index_date" not in raw:
            raise ConfigError("missing key 'index_date'")
        try:
            index_date = pd.Timestamp(str(raw["index_date"])).normalize()
        except ValueError:
            raise ConfigError("index_date is not a date (use YYYY-MM-DD)") from None
        inputs = raw.get("inputs", {})
        for key in ("register", "events", "activity"):
            if key not in inputs:
                raise ConfigError(f"missing key '{key}' in [inputs]")
        output = raw.get("output", {})
        if "dir" not in output:
            raise ConfigError("missing key 'dir' in [output]")
        pseudo = raw.get("pseudonymisation", {})
        if "key_env" not in pseudo:
            raise ConfigError("missing key 'key_env' in [pseudonymisation] (the name of the "
                              "environment variable holding the key; never the key itself)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pseudo["key_env"]):
            raise ConfigError("key_env in [pseudonymisation] must be an environment variable "
                              "name, not a key")
        codelists = raw.get("codelists", {})
        if not isinstance(codelists, dict):
            raise ConfigError("[codelists] must be a table")
        for key, value in codelists.items():
            if key not in _INDICES or not isinstance(value, str):
                raise ConfigError(f"[codelists] key '{key}': expected one of "
                                  f"{', '.join(sorted(_INDICES))} = \"<list>\" or \"none\"")
        rules_raw = raw.get("rules", [])
        if not isinstance(rules_raw, list) or not rules_raw:
            raise ConfigError("at least one [[rules]] table is needed")
        rules = tuple(SelectionRule.from_dict(r) for r in rules_raw)
        if len({r.name for r in rules}) != len(rules):
            raise ConfigError("[[rules]] names must be unique")
        risk = raw.get("risk", {})
        if "model" in risk and "fit" in risk:
            raise ConfigError("[risk]: give 'model' or [risk.fit], not both")
        if "fit" in risk and "outcomes" not in inputs:
            raise ConfigError("[risk.fit] needs an 'outcomes' input")
        has_risk = "model" in risk or "fit" in risk
        rank_by = str(output.get("rank_by", "risk"))
        uses_risk = rank_by == "risk" or any(
            r.top_fraction is not None and r.rank_column == "risk" for r in rules) or any(
            c.column in ("risk", "tier") for r in rules for c in r.where)
        if uses_risk and not has_risk:
            raise ConfigError("rank_by/rules use 'risk' but [risk] has no 'model' or [risk.fit]")
        if len(risk.get("tier_cuts", (0, 0, 0))) != 3:
            raise ConfigError("[risk] tier_cuts needs three cumulative fractions")
        fmt = output.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise ConfigError("[output] format must be 'csv' or 'parquet'")
        include = tuple(output.get("include_columns", ()))
        bad = sorted(set(include) & _IDENTIFIERS)
        if bad:
            raise ConfigError(f"[output] include_columns may not hold identifiers: {bad}")
        id_column = pseudo.get("id_column", "nhs_number")
        if id_column not in ("nhs_number", "patient_id"):
            raise ConfigError("[pseudonymisation] id_column must be 'nhs_number' or 'patient_id'")
        cuts = tuple(float(c) for c in risk.get("tier_cuts", (0.005, 0.05, 0.2)))
        seg = raw.get("segments", {})
        quality = {"max_invalid_id_fraction": 0.01, "max_unrecognised_code_fraction": 0.2,
                   "max_unknown_patient_activity_fraction": 0.05}
        quality.update({k: float(v) for k, v in raw.get("quality", {}).items()})
        return cls(
            index_date=index_date,
            inputs={k: base / v for k, v in inputs.items()},
            output_dir=base / output["dir"],
            rules=rules,
            key_env=pseudo["key_env"],
            raw=raw,
            name=str(raw.get("name", "caseload")),
            codelists=dict(codelists),
            risk_model=base / risk["model"] if "model" in risk else None,
            risk_fit=dict(risk["fit"]) if "fit" in risk else None,
            tier_cuts=cuts,
            segments=bool(seg.get("enabled", True)),
            segment_rules=str(seg.get("rules", "bridges_to_health")),
            per_practice=bool(output.get("per_practice", False)),
            format=fmt,
            include_columns=include,
            rank_by=rank_by,
            id_column=id_column,
            allow_key_rotation=bool(pseudo.get("allow_key_rotation", False)),
            quality=quality,
        )


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_job` did: ``run_id``, ``run_dir``, the ``manifest`` dict and
    ``reused`` (True when an identical complete run already existed)."""

    run_id: str
    run_dir: Path
    manifest: dict
    reused: bool = False


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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "csv":
                fh.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
            else:
                frame.to_parquet(fh, index=False, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _write_json(obj: dict, target: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
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


def run_job(config: JobConfig, *, environ=None) -> JobResult:
    """Run a stratification job and publish its caseload lists atomically.

    Parameters
    ----------
    config : JobConfig
    environ : mapping, optional
        Where the key's environment variable is read (default ``os.environ``).

    Returns
    -------
    JobResult

    Raises
    ------
    ConfigError
        Bad config, missing/short key, or key rotated since the previous run without
        ``allow_key_rotation`` (CLI exit 78) - all before any data is read.
    FileNotFoundError
        An input is missing (exit 66).
    JobLockedError
        Another run holds the lock (exit 75).
    DataQualityError
        Data broke a threshold or its contract; a report is written under
        ``output.dir/reports/`` and nothing is published (exit 65).
    OSError
        Disk full, permission denied: nothing is published, the previous run is intact.
    """
    from pophealth import __version__
    from pophealth.io import open_dataset

    key = load_key(config.key_env, environ=environ)
    fingerprint = key_fingerprint(key)
    for name, path in config.inputs.items():
        open_dataset(path)  # FileNotFoundError (exit 66) for absent or empty inputs
        logger.info("job: input %s found", name)
    if config.risk_model is not None and not config.risk_model.exists():
        raise FileNotFoundError(2, "risk model not found", str(config.risk_model))
    out = config.output_dir
    with output_lock(out):
        n_clean = _clean_leftovers(out)
        if n_clean:
            logger.warning("job: removed %d leftover temporary item(s) from an interrupted run",
                           n_clean)
        input_hashes = {name: _hash_path(path) for name, path in sorted(config.inputs.items())}
        if config.risk_model is not None:
            input_hashes["risk_model"] = _hash_path(config.risk_model)
        ident = json.dumps({"version": __version__, "config": config.config_hash,
                            "inputs": input_hashes, "key": fingerprint}, sort_keys=True)
        run_id = hashlib.sha256(ident.encode()).hexdigest()[:16]
        previous = _previous(out, run_id)
        rotated = previous is not None and previous.get("key_fingerprint") != fingerprint
        if rotated and not config.allow_key_rotation:
            raise ConfigError(
                f"pseudonymisation key fingerprint differs from the previous run "
                f"({previous['run_id']}): pseudo ids would not link to earlier lists. "
                "Set allow_key_rotation = true in [pseudonymisation] if the key was rotated "
                "on purpose")
        try:
            patients, counts, notes = _build_patients(config)
        except (SchemaError, CodelistError) as exc:
            report = {"run_id": run_id, "status": "failed: data quality",
                      "message": str(exc), "problems": getattr(exc, "problems", []),
                      "index_date": str(config.index_date.date()),
                      "counts": getattr(exc, "counts", {})}
            (out / "reports").mkdir(parents=True, exist_ok=True)
            path = _write_json(report, out / "reports" / f"{run_id}-data-quality.json")
            logger.error("job: data quality failure; report %s; nothing published", path)
            raise DataQualityError(f"{exc} (report: {path}; nothing published)",
                                   getattr(exc, "problems", []), report_path=path) from None
        return _publish(config, patients, key, fingerprint, counts, notes, run_id=run_id,
                        input_hashes=input_hashes, previous=previous, rotated=rotated,
                        version=__version__)


def _publish(config: JobConfig, patients: pd.DataFrame, key: bytes, fingerprint: str,
             counts: dict, notes: list, *, run_id: str, input_hashes: dict,
             previous: dict | None, rotated: bool, version: str) -> JobResult:
    out = config.output_dir
    rank_by = config.rank_by
    selected = select_caseload(patients, config.rules, rank_by=rank_by, group_by="pcn")
    ids = patients["_pseudo_source"].reindex(selected.index)
    caseload = pd.DataFrame({"pseudo_id": pseudonymise(ids.to_numpy(), key)},
                            index=selected.index)
    for col in ("pcn", "practice", "rank", "risk", "tier", "segment"):
        if col in selected.columns:
            caseload[col] = selected[col].to_numpy()
    if "risk" in caseload.columns:
        caseload["risk"] = caseload["risk"].astype(np.float64).round(4)
    for col in ("pcn", "practice", "tier", "segment"):
        if col in caseload.columns:
            caseload[col] = caseload[col].astype(object).where(caseload[col].notna(), "")
    prev_dir = out / "runs" / previous["run_id"] if previous else None
    prev = (read_caseload(prev_dir) if prev_dir is not None and not rotated
            else pd.DataFrame(columns=list(_CASELOAD_COLUMNS)))
    if rotated:
        status = np.full(len(caseload), "unknown (key rotated)", dtype=object)
    else:
        status = np.where(caseload["pseudo_id"].isin(prev["pseudo_id"]), "continuing", "new")
    caseload["status"] = status
    caseload["rule"] = selected["rule"].to_numpy()
    caseload["reasons"] = selected["reasons"].to_numpy()
    caseload["index_date"] = str(config.index_date.date())
    caseload["run_id"] = run_id
    for col in config.include_columns:
        caseload[col] = selected[col].to_numpy()
    caseload = caseload.sort_values(["pcn", "rank", "pseudo_id"], kind="stable")
    caseload = caseload.reset_index(drop=True)

    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=runs, prefix=f".tmp-{run_id}-"))
    files: dict = {}
    ext = config.format
    try:
        pcns = sorted(set(patients["pcn"].astype(str)) | set(prev.get("pcn", pd.Series(
            dtype=object)).astype(str)))
        n_new = n_left = 0
        for pcn in pcns:
            part = caseload[caseload["pcn"].astype(str) == pcn]
            rel = f"caseload/{_safe_name(pcn)}.{ext}"
            if rel in files:
                raise ConfigError("two PCN codes map to the same file name")
            _write_table(part, tmp / rel, ext)
            files[rel] = len(part)
            if rotated:
                continue
            old = prev[prev["pcn"].astype(str) == pcn]
            new_rows = part[part["status"] == "new"]
            left = old[~old["pseudo_id"].isin(caseload["pseudo_id"])]
            changes = pd.concat([
                pd.DataFrame({"pseudo_id": new_rows["pseudo_id"], "pcn": pcn,
                              "practice": new_rows["practice"], "change": "new",
                              "rank": new_rows["rank"].astype("Int64"),
                              "previous_rank": pd.array([pd.NA] * len(new_rows), "Int64"),
                              "rule": new_rows["rule"]}),
                pd.DataFrame({"pseudo_id": left["pseudo_id"], "pcn": pcn,
                              "practice": left["practice"].astype(str), "change": "left",
                              "rank": pd.array([pd.NA] * len(left), "Int64"),
                              "previous_rank": left["rank"].astype("Int64"),
                              "rule": left["rule"]}),
            ], ignore_index=True).sort_values(["change", "rank", "previous_rank", "pseudo_id"],
                                               kind="stable", ignore_index=True)
            rel = f"changes/{_safe_name(pcn)}.{ext}"
            _write_table(changes, tmp / rel, ext)
            files[rel] = len(changes)
            n_new += len(new_rows)
            n_left += len(left)
        if config.per_practice:
            for practice, part in caseload.groupby("practice", sort=True):
                part = part.copy()
                part["rank"] = np.arange(1, len(part) + 1)  # already ordered by PCN rank
                rel = f"practice/{_safe_name(practice)}.{ext}"
                _write_table(part, tmp / rel, ext)
                files[rel] = len(part)
        hashes = {rel: _hash_path(tmp / rel) for rel in sorted(files)}
        manifest = {
            "pophealth_version": version,
            "run_id": run_id,
            "name": config.name,
            "index_date": str(config.index_date.date()),
            "config_hash": config.config_hash,
            "config": config.raw,
            "input_hashes": input_hashes,
            "key_fingerprint": fingerprint,
            "key_rotated": bool(rotated),
            "previous_run_id": previous["run_id"] if previous else None,
            "risk_model": counts.get("risk_model"),
            "counts": {**{k: v for k, v in counts.items() if k != "risk_model"},
                       "caseload_rows": int(len(caseload)),
                       "new": None if rotated else n_new,
                       "left": None if rotated else n_left,
                       "by_rule": selected.attrs.get("rule_counts", {}),
                       "by_pcn": {str(k): int(v) for k, v in
                                  caseload["pcn"].value_counts().sort_index().items()}},
            "files": {rel: {"rows": files[rel], "sha256": hashes[rel]} for rel in files},
            "data_quality_notes": notes,
            "versions": _versions(),
            "tie_rule": selected.attrs.get("tie_rule"),
            "note": "pseudonymised, not anonymised: pseudo ids can be re-linked by the key "
                    "holder, so these files remain personal data",
        }
        _write_json(manifest, tmp / "manifest.json")  # written last
        final = runs / run_id
        reused = False
        if final.is_dir() and (final / "manifest.json").is_file():
            try:
                old = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
            except ValueError:
                old = {}
            if old.get("files") == manifest["files"]:
                shutil.rmtree(tmp)
                reused = True
        if not reused:
            if final.exists():
                trash = Path(tempfile.mkdtemp(dir=runs, prefix=f".tmp-old-{run_id}-"))
                os.replace(final, trash / "run")
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = out / f".current.{run_id}"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path("runs") / run_id, link_tmp)
    os.replace(link_tmp, out / "current")
    logger.info("job: run %s published: %d caseload row(s) in %d PCN file(s)", run_id,
                len(caseload), sum(1 for r in files if r.startswith("caseload/")))
    return JobResult(run_id=run_id, run_dir=final, manifest=manifest, reused=reused)


def _versions() -> dict:
    import pyarrow
    import sklearn

    return {"numpy": np.__version__, "pandas": pd.__version__, "pyarrow": pyarrow.__version__,
            "scikit-learn": sklearn.__version__}


def _read(path: Path) -> pd.DataFrame:
    from pophealth.io import read_table

    return read_table(path).drop(columns=["bucket"], errors="ignore")


def _dates(s: pd.Series) -> np.ndarray:
    return pd.to_datetime(s, errors="coerce").to_numpy(dtype="datetime64[ns]")


def _fail(message: str, counts: dict, column: str = "", rule: str = "", count: int = 0):
    exc = DataQualityError(message, [{"column": column, "rule": rule, "count": int(count),
                                      "positions": []}])
    exc.counts = counts
    return exc


def _risk(config: JobConfig, register, scores, activity) -> pd.Series:
    from pophealth.features import make_features

    X = make_features(register, scores, activity, index_date=config.index_date)
    if config.risk_model is not None:
        model = _load_model(config.risk_model)
    else:
        from pophealth.risk import RiskModel

        fit = config.risk_fit
        outcome = fit.get("outcome", "emergency_admission")
        outcomes = _read(config.inputs["outcomes"])
        if outcome not in outcomes.columns or "patient_id" not in outcomes.columns:
            raise ConfigError(f"[risk.fit] outcomes input lacks 'patient_id' or '{outcome}'")
        y = outcomes.set_index("patient_id")[outcome].reindex(X.index)
        train = np.flatnonzero(y.notna().to_numpy())
        max_rows = int(fit.get("max_rows", 0))
        seed = int(fit.get("random_state", 0))
        if max_rows and len(train) > max_rows:
            rng = np.random.default_rng(seed)
            train = np.sort(rng.choice(train, size=max_rows, replace=False))
        calibration = fit.get("calibration", "sigmoid")
        model = RiskModel(method=fit.get("method", "hgb"),
                          calibration=None if calibration == "none" else calibration,
                          random_state=seed)
        model.fit(X.iloc[train], y.iloc[train].astype(bool).to_numpy())
        logger.info("job: fitted a risk model on %d patients", len(train))
    meta = getattr(model, "metadata_", None) or {}
    info = {"source": "saved model" if config.risk_model is not None else "fitted in the job",
            "class": type(model).__name__, "n_features": int(X.shape[1])}
    info.update({k: meta[k] for k in ("training_period", "performance", "description")
                 if k in meta})
    return model.predict_risk(X), info


def _load_model(path: Path):
    from pophealth.model_io import load_model

    return load_model(path)


def _build_patients(config: JobConfig) -> tuple[pd.DataFrame, dict, list]:
    """Read, validate, check thresholds, score, predict and segment; included patients only."""
    from pophealth.demo import patient_table
    from pophealth.nhs_number import is_valid_nhs_number
    from pophealth.pipeline import score_patients
    from pophealth.schema import validate_activity, validate_events, validate_register

    q, idx = config.quality, config.index_date
    register = _read(config.inputs["register"])
    events = _read(config.inputs["events"])
    activity = _read(config.inputs["activity"])
    counts: dict = {"register_rows_in": len(register), "events_rows_in": len(events),
                    "activity_rows_in": len(activity)}
    logger.info("job: read %d register, %d event and %d activity row(s)", len(register),
                len(events), len(activity))
    validate_register(register, index_date=idx)
    validate_events(events)
    validate_activity(activity)
    for col in ("pcn", config.id_column):
        if col not in register.columns:
            raise _fail(f"register: missing column '{col}' (rule 'missing_column')", counts,
                        col, "missing_column")
    register = register.sort_values("patient_id", kind="stable").reset_index(drop=True)
    n = len(register)
    keep = np.ones(n, dtype=bool)
    excluded: dict = {}
    if config.id_column == "nhs_number":
        nhs = register["nhs_number"]
        valid = is_valid_nhs_number(nhs)
        text = nhs.astype(str).str.replace(r"[\s-]", "", regex=True)
        dup = text.duplicated(keep=False).to_numpy() & valid
        excluded["invalid_nhs_number"] = int((~valid).sum())
        excluded["duplicate_nhs_number"] = int(dup.sum())
        bad = ~valid | dup
        counts["excluded"] = excluded
        if n and bad.mean() > q["max_invalid_id_fraction"]:
            raise _fail(f"register: {int(bad.sum())} of {n} row(s) have an invalid or duplicated "
                        f"NHS number, above max_invalid_id_fraction "
                        f"{q['max_invalid_id_fraction']}", counts, "nhs_number",
                        "valid_unique_nhs_number", int(bad.sum()))
        keep &= ~bad
    t = np.datetime64(idx.to_datetime64(), "ns")
    for col, reason, test in (
            ("date_of_death", "died_on_or_before_index_date", lambda d: d <= t),
            ("registered_from", "registered_after_index_date", lambda d: d > t),
            ("registered_to", "deregistered_before_index_date", lambda d: d < t)):
        if col in register.columns:
            d = _dates(register[col])
            hit = ~np.isnat(d) & test(d)
            excluded[reason] = int((hit & keep).sum())
            keep &= ~hit
    counts["excluded"] = excluded
    pos = pd.Index(register["patient_id"]).get_indexer(activity["patient_id"].to_numpy())
    unknown = int((pos < 0).sum())
    counts["activity_rows_unknown_patient"] = unknown
    if len(activity) and unknown / len(activity) > q["max_unknown_patient_activity_fraction"]:
        raise _fail(f"activity: {unknown} of {len(activity)} row(s) are for patients not on the "
                    "register, above max_unknown_patient_activity_fraction "
                    f"{q['max_unknown_patient_activity_fraction']}", counts, "patient_id",
                    "known_patient", unknown)
    lists = {k: (None if v.lower() == "none" else v) for k, v in config.codelists.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        scores = score_patients(register, events, index_date=idx, codelists=lists)
        reports = scores.attrs.get("pophealth_reports", {})
        counts["events"] = {k: {f: int(r[f]) for f in (
            "n_events", "n_other_system", "n_unrecognised", "n_unknown_patient",
            "n_after_index_date", "n_used")} for k, r in sorted(reports.items())}
        for k, r in sorted(reports.items()):
            frac = float(r["unrecognised_fraction"])
            if frac > q["max_unrecognised_code_fraction"]:
                raise _fail(f"events: {frac:.1%} of codes for {k} are unrecognised, above "
                            f"max_unrecognised_code_fraction "
                            f"{q['max_unrecognised_code_fraction']}", counts, "code",
                            "recognised_code", int(r["n_unrecognised"]))
        patients = patient_table(register, scores, activity, index_date=idx)
        patients["_pseudo_source"] = register[config.id_column].to_numpy()
        if config.risk_model is not None or config.risk_fit is not None:
            from pophealth.tiers import risk_tiers

            risk, counts["risk_model"] = _risk(config, register, scores, activity)
            patients["risk"] = risk.reindex(patients.index).to_numpy()
            tiers = risk_tiers(patients.loc[keep, "risk"], cuts=config.tier_cuts)
            patients["tier"] = tiers.reindex(patients.index)
        if config.segments:
            from pophealth.segments import bridges_to_health

            seg = bridges_to_health(patients, events, index_date=idx,
                                    rules=config.segment_rules)
            patients["segment"] = seg["segment"].reindex(patients.index)
            patients["segment_rule"] = seg["rule"].reindex(patients.index)
    notes = _warnings_to_notes(caught)
    patients = patients[keep]
    counts["patients_included"] = int(keep.sum())
    logger.info("job: %d patient(s) included, %d excluded", int(keep.sum()), int((~keep).sum()))
    return patients, counts, notes


def _warnings_to_notes(caught) -> list:
    return sorted({str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)})



#: Key used only by ``pophealth demo`` on synthetic data (public, so never for real data).
DEMO_KEY_ENV = "POPHEALTH_DEMO_KEY"
_DEMO_KEY = hashlib.sha256(b"pophealth demo key: synthetic data only").hexdigest()

_DEMO_TOML = """\
# Written by `pophealth demo`: the stratification job on a synthetic population.
name = "demo-caseload"
index_date = "{index_date}"

[inputs]
register = "population/register"
events = "population/events"
activity = "population/activity"
outcomes = "population/outcomes"

[codelists]
efi = "efi_synthetic_pc"
cms = "cms_synthetic_pc"

[risk]
tier_cuts = [0.005, 0.05, 0.2]

[risk.fit]
method = "logistic"
outcome = "emergency_admission"
random_state = {seed}

[[rules]]
name = "top 2% emergency admission risk in the practice (adults)"
top_fraction = 0.02
by = "practice"
where = [["age", ">=", 18]]

[[rules]]
name = "frailty or organ failure with 2+ emergency admissions"
where = [
  ["segment", "in", ["Frailty and dementia (long decline)", "Organ failure (limited reserve)"]],
  ["prior_emergency_admissions", ">=", 2],
]

[output]
dir = "caseloads"
per_practice = true

[pseudonymisation]
key_env = "{key_env}"
"""


def demo_job(out_dir, *, n_patients: int = 50_000, random_state: int = 0,
             index_date="2025-04-01") -> JobResult:
    """Write a synthetic population and a job config under ``out_dir`` and run the job.

    The pseudonymisation key is a fixed, public demo key passed in a private
    environment mapping (``os.environ`` is not touched): fine for synthetic data, never
    for real data.

    Examples
    --------
    >>> import tempfile
    >>> from pophealth.jobs import demo_job
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = demo_job(tmp, n_patients=2_000)
    ...     sorted(result.manifest["files"])[:1], result.manifest["counts"]["patients_included"]
    (['caseload/SYNPCN0001.csv'], 2000)
    """
    from pophealth.synthetic import write_population

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_population(out / "population", n_patients, random_state=random_state,
                     index_date=str(pd.Timestamp(index_date).date()), progress=False)
    toml = out / "job.toml"
    toml.write_text(_DEMO_TOML.format(index_date=pd.Timestamp(index_date).date(),
                                      seed=int(random_state), key_env=DEMO_KEY_ENV),
                    encoding="utf-8")
    return run_job(JobConfig.from_toml(toml), environ={DEMO_KEY_ENV: _DEMO_KEY})
