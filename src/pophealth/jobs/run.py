"""The scheduled stratification job: TOML config in, per-PCN MDT caseload lists out.

:func:`run_job` reads a register, coded events and activity (Parquet files, partitioned
Parquet datasets or CSV), scores indices, predicts risk, assigns segments, selects the
caseload with named rules and writes, under ``output.dir``::

    runs/<run_id>/caseload/<stem>.csv     one ranked list per PCN (pseudo ids only)
    runs/<run_id>/practice/<stem>.csv     optional, one per practice
    runs/<run_id>/changes/<stem>.csv      who is new and who left since the previous run
    runs/<run_id>/index.csv               kind, code, missing, file, rows: code -> file
    runs/<run_id>/manifest.json           written last: versions, file SHA-256 digests,
                                          counts, key fingerprint, index_date, run id
    current -> runs/<run_id>              swapped atomically when the run is complete

File stems are collision-free and never hidden (``<slug>-<hash of the code>``, see
:mod:`pophealth.jobs.filenames`); patients with no PCN are listed in
``caseload/unknown-pcn.csv`` (counted as ``counts.unknown_pcn``), so every selected
patient is on exactly one list. Caseload files carry only the columns of
:mod:`pophealth.jobs.columns` (an allow-list); CSV text cells are formula-safe
(:mod:`pophealth.jobs.csvsafe`). The manifest's ``files.<path>.sha256`` is the SHA-256 of
the file's bytes, so ``sha256sum -c`` can check a run.

Guarantees: the config is checked (unknown keys are errors) and the pseudonymisation key
loaded before any data is read; a lock refuses a concurrent run on the same output; a
run is built in a temporary directory and renamed into place only when complete
(manifest last), so a killed run never leaves a truncated list and the previous run stays
intact (the next run removes the leftovers); a completed run is never rewritten - rerunning
an earlier config points ``current`` back at its verified run; the run id is a hash of the pophealth
version, the config, the input bytes and the key fingerprint, and rows are sorted by a
stable key, so rerunning the same inputs gives identical content. Logs, errors and
reports carry counts, column and rule names only - never identifiers. Output is
pseudonymised, not anonymised.

Modules: :mod:`pophealth.jobs.config` (the TOML config), :mod:`pophealth.jobs.inputs`
(reading and data-quality checks), :mod:`pophealth.jobs.runstore` (lock, atomic writes,
manifest); this module runs the job and publishes its lists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.cohorts.caseload import select_caseload
from pophealth.contracts.exceptions import CodelistError, ConfigError, SchemaError
from pophealth.contracts.schema import naive_timestamp
from pophealth.jobs.columns import check_include_columns
from pophealth.jobs.config import JobConfig
from pophealth.jobs.csvblocks import csv_blocks
from pophealth.jobs.filenames import file_stems, normalise_codes
from pophealth.jobs.inputs import DataQualityError, _build_patients
from pophealth.jobs.progress import STAGES, StageBar
from pophealth.jobs.pseudonymise import key_fingerprint, load_key, pseudonymise
from pophealth.jobs.runstore import (
    _CASELOAD_COLUMNS,
    _clean_leftovers,
    _completed_run,
    _current_id,
    _hash_path,
    _install_run,
    _point_current,
    _previous,
    _read_manifest,
    _sync_files,
    _test_pause,
    _versions,
    _write_bytes,
    _write_json,
    _write_table,
    output_lock,
    read_caseload,
)

__all__ = ["JobResult", "run_job", "demo_job"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_job` did.

    Attributes
    ----------
    run_id : str
    run_dir : Path
    manifest : dict
        The run's manifest (for a reused run, as written when it was built: its
        ``counts.new`` / ``counts.left`` compare it with the run before *it*).
    reused : bool
        True when an identical complete run already existed and was not rebuilt.
    changes : dict
        This call's comparison with the run ``current`` pointed at before it:
        ``compared_with`` (that run id, or None on a first run), ``new``, ``continuing``
        and ``left`` patient counts (None when the key was rotated, so pseudo ids do not
        link). ``new + continuing`` is the caseload size. An identical rerun gives
        0 new, every patient continuing, 0 left.

    Examples
    --------
    >>> import tempfile
    >>> from pophealth.jobs import demo_job
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = demo_job(tmp, n_patients=2_000)
    ...     again = demo_job(tmp, n_patients=2_000)
    ...     n = first.manifest["counts"]["caseload_rows"]
    ...     (first.changes["new"] == n, again.reused,
    ...      again.changes == {"compared_with": first.run_id, "new": 0, "continuing": n,
    ...                        "left": 0})
    (True, True, True)
    """

    run_id: str
    run_dir: Path
    manifest: dict
    reused: bool = False
    changes: dict | None = None
    report: Path | None = None


def run_job(config: JobConfig, *, environ=None, progress: bool | None = False) -> JobResult:
    """Run a stratification job and publish its caseload lists atomically.

    Parameters
    ----------
    config : JobConfig
    environ : mapping, optional
        Where the key's environment variable is read (default ``os.environ``).
    progress : bool or None, default False
        Show a stage progress bar on stderr (:mod:`pophealth.jobs.progress`); ``None``
        shows it only when stderr is a terminal (the CLI's default).

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
    WorkerLostError
        A batch worker process was killed (e.g. out of memory; exit 70): nothing is
        published; the message says how to rerun with one batch in memory at a time.

    Examples
    --------
    A job on a synthetic population (the config :func:`demo_job` writes), run twice: the
    second run is identical, so it reuses the first and reports nobody new.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pophealth.jobs import JobConfig, demo_job, run_job
    >>> from pophealth.jobs.run import _DEMO_KEY, DEMO_KEY_ENV
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = demo_job(tmp, n_patients=2_000)
    ...     config = JobConfig.from_toml(Path(tmp) / "job.toml")
    ...     again = run_job(config, environ={DEMO_KEY_ENV: _DEMO_KEY})
    ...     again.run_id == first.run_id, again.reused, again.changes["new"]
    (True, True, 0)
    """
    with StageBar(STAGES, show=progress) as bar:
        return _run_job(config, environ, bar.start)


def _run_job(config: JobConfig, environ, stage) -> JobResult:
    from pophealth._version import __version__
    from pophealth.engines.io import open_dataset

    stage("check inputs")
    check_include_columns(config.include_columns)  # allow-list, before any data is read
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
        _test_pause("locked")
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
        existing = _completed_run(out, run_id)  # RunStoreError if it fails verification
        if existing is not None:
            # a completed run is immutable: point current back at it, never rebuild it
            changes = _reused_changes(out, existing)
            _point_current(out, run_id)
            logger.info("job: run %s already exists and matches its manifest; current "
                        "points at it again", run_id)
            return JobResult(run_id=run_id, run_dir=out / "runs" / run_id, manifest=existing,
                             reused=True, changes=changes)
        try:
            patients, counts, notes = _build_patients(config, stage)
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
        result = _publish(config, patients, key, fingerprint, counts, notes, run_id=run_id,
                          input_hashes=input_hashes, previous=previous, rotated=rotated,
                          version=__version__, stage=stage)
        if config.report is not None:  # [report]: aggregate counts only, beside the run
            from dataclasses import replace

            from pophealth.jobs.report import write_job_report

            path = write_job_report(config, patients, counts, notes, run_id=run_id,
                                    by_pcn=result.manifest["counts"]["by_pcn"])
            result = replace(result, report=path)
        return result


def _reused_changes(out: Path, existing: dict) -> dict:
    """New / continuing / left of a reused run against the run ``current`` points at now."""
    n = int(existing["counts"]["caseload_rows"])
    before = _current_id(out)
    if before == existing["run_id"]:  # an identical rerun: the same list again
        return {"compared_with": before, "new": 0, "continuing": n, "left": 0}
    prev = _read_manifest(out / "runs" / before) if before is not None else None
    if prev is None:
        return {"compared_with": None, "new": n, "continuing": 0, "left": 0}
    if prev.get("key_fingerprint") != existing.get("key_fingerprint"):
        return {"compared_with": before, "new": None, "continuing": None, "left": None}
    cur_ids = read_caseload(out / "runs" / existing["run_id"])["pseudo_id"]
    prev_ids = read_caseload(out / "runs" / before)["pseudo_id"]
    continuing = int(cur_ids.isin(prev_ids).sum())
    return {"compared_with": before, "new": n - continuing, "continuing": continuing,
            "left": int((~prev_ids.isin(cur_ids)).sum())}


def _pcn_key(patients: pd.DataFrame) -> pd.DataFrame:
    """``patients`` (a shallow copy: no column is copied) plus ``_pcn_key``: the PCN code
    as text, ``""`` when missing, so that None, NaN and blank PCNs form one group (the
    ``unknown-pcn`` list). A categorical with sorted categories, each code normalised once:
    one string per PCN, not one per patient."""
    codes, uniques = pd.factorize(patients["pcn"], use_na_sentinel=True)
    labels = normalise_codes(np.asarray(uniques, dtype=object))
    if (codes < 0).any():
        labels = np.append(labels, "")  # position -1: the missing codes
    cats, inverse = np.unique(labels.astype(str), return_inverse=True)  # None, "" and " " merge
    key = pd.Categorical.from_codes(inverse[codes].astype(np.int32),
                                    categories=pd.Index(cats.tolist(), dtype=object))
    out = patients.copy(deep=False)
    out["_pcn_key"] = key
    return out


def _changes(new_rows: pd.DataFrame, left: pd.DataFrame) -> pd.DataFrame:
    """Who is new and who left, every PCN at once (each row keeps its own ``pcn``), in
    each PCN's file order: change, rank, previous rank, pseudo id."""
    return pd.concat([
        pd.DataFrame({"pseudo_id": new_rows["pseudo_id"], "pcn": new_rows["pcn"],
                      "practice": new_rows["practice"], "change": "new",
                      "rank": new_rows["rank"].astype("Int64"),
                      "previous_rank": pd.array([pd.NA] * len(new_rows), "Int64"),
                      "rule": new_rows["rule"]}),
        pd.DataFrame({"pseudo_id": left["pseudo_id"], "pcn": left["pcn"],
                      "practice": left["practice"], "change": "left",
                      "rank": pd.array([pd.NA] * len(left), "Int64"),
                      "previous_rank": left["rank"].astype("Int64"),
                      "rule": left["rule"]}),
    ], ignore_index=True).sort_values(["change", "rank", "previous_rank", "pseudo_id"],
                                       kind="stable", ignore_index=True)


def _blocks(keys: np.ndarray, codes: list) -> tuple[np.ndarray, np.ndarray]:
    """Row order putting each code's rows together, in ``codes`` order (stable within a
    code), and the block bounds (``len(codes) + 1`` positions)."""
    pos = pd.Index(codes, dtype=object).get_indexer(keys)
    if (pos < 0).any():  # pragma: no cover - an internal invariant
        raise RuntimeError(f"{int((pos < 0).sum())} row(s) have no output file "
                           "(rule 'every_selected_patient_listed'); nothing published")
    order = np.argsort(pos, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(codes)))])
    return order, bounds


def _check_accounted(kind: str, written: int, expected: int) -> None:
    if written != expected:  # pragma: no cover - an internal invariant
        raise RuntimeError(f"{kind} files hold {written} row(s) but {expected} were selected "
                           "(rule 'every_selected_patient_listed'); nothing published")


def _publish(config: JobConfig, patients: pd.DataFrame, key: bytes, fingerprint: str,
             counts: dict, notes: list, *, run_id: str, input_hashes: dict,
             previous: dict | None, rotated: bool, version: str, stage) -> JobResult:
    out = config.output_dir
    stage("select")
    rank_by = config.rank_by
    missing = [c for c in config.include_columns if c not in patients.columns]
    if missing:
        raise ConfigError(f"[output] include_columns: {missing} not in this job's patient "
                          "table (rule 'column_available')")
    patients = _pcn_key(patients)
    selected = select_caseload(patients, config.rules, rank_by=rank_by, group_by="_pcn_key")
    caseload = pd.DataFrame({"pseudo_id": pseudonymise(selected["_pseudo_source"].to_numpy(),
                                                       key)},
                            index=selected.index)
    caseload["pcn"] = selected["_pcn_key"].to_numpy(dtype=object)
    caseload["practice"] = normalise_codes(selected["practice"].to_numpy())
    for col in ("rank", "risk", "tier", "segment"):
        if col in selected.columns:
            caseload[col] = selected[col].to_numpy()
    if "risk" in caseload.columns:
        caseload["risk"] = caseload["risk"].astype(np.float64).round(4)
    for col in ("tier", "segment"):
        if col in caseload.columns:
            caseload[col] = caseload[col].astype(object).where(caseload[col].notna(), "")
    prev_dir = out / "runs" / previous["run_id"] if previous else None
    prev = (read_caseload(prev_dir) if prev_dir is not None and not rotated
            else pd.DataFrame(columns=list(_CASELOAD_COLUMNS)))
    prev = prev.assign(pcn=normalise_codes(prev["pcn"].to_numpy()),
                       practice=normalise_codes(prev["practice"].to_numpy()))
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
    rule_names = list(selected.attrs.get("rule_counts", {}))
    first_rule = caseload["rule"].value_counts()
    caseload = caseload.sort_values(["pcn", "rank", "pseudo_id"], kind="stable")
    caseload = caseload.reset_index(drop=True)

    stage("write")
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=runs, prefix=f".tmp-{run_id}-"))
    files: dict = {}
    hashes: dict = {}
    index_rows: dict = {}
    unsynced: list = []
    ext = config.format

    def write(kind: str, stems: dict, frame: pd.DataFrame, keys: np.ndarray) -> int:
        """One file per code of ``stems`` (in its order) holding that code's rows."""
        order, bounds = _blocks(keys, list(stems))
        frame = frame.iloc[order]
        if kind == "practice":  # already ordered by PCN rank: number 1.. per practice
            frame = frame.assign(rank=np.arange(len(frame)) - np.repeat(
                bounds[:-1], np.diff(bounds)) + 1)
        data = csv_blocks(frame, bounds) if ext == "csv" else None
        for i, (code, stem) in enumerate(stems.items()):
            rel = f"{kind}/{stem}.{ext}"
            if data is not None:  # fsynced together before the manifest (_sync_files)
                hashes[rel] = _write_bytes(data[i], tmp / rel, sync=False)
                unsynced.append(tmp / rel)
            else:
                hashes[rel] = _write_table(frame.iloc[bounds[i]:bounds[i + 1]], tmp / rel, ext)
            rows = int(bounds[i + 1] - bounds[i])
            files[rel] = rows
            index_rows[(kind, code)] = {"kind": kind, "code": code, "missing": code == "",
                                        "file": rel, "rows": rows}
        return int(bounds[-1])

    try:
        pcn_stems = file_stems(set(patients["_pcn_key"].cat.categories) | set(prev["pcn"]),
                               "pcn")
        written = write("caseload", pcn_stems, caseload, caseload["pcn"].to_numpy())
        _check_accounted("caseload", written, len(caseload))
        n_new = n_left = 0
        if not rotated:
            new_rows = caseload[caseload["status"] == "new"]
            left_all = prev[~prev["pseudo_id"].isin(caseload["pseudo_id"])]
            changes = _changes(new_rows, left_all)
            write("changes", pcn_stems, changes, changes["pcn"].to_numpy())
            n_new, n_left = len(new_rows), len(left_all)
        # index.csv: per PCN (in code order) its caseload then its changes file, then
        # the practice files in code order
        listed = [(kind, c) for c in pcn_stems
                  for kind in (("caseload",) if rotated else ("caseload", "changes"))]
        if config.per_practice:
            practices = caseload["practice"].to_numpy()
            practice_stems = file_stems(set(practices), "practice")
            written = write("practice", practice_stems, caseload, practices)
            _check_accounted("practice", written, len(caseload))
            listed += [("practice", c) for c in practice_stems]
        index_rows = [index_rows[k] for k in listed]
        index = pd.DataFrame(index_rows, columns=["kind", "code", "missing", "file", "rows"])
        hashes["index.csv"] = _write_table(index, tmp / "index.csv", "csv")
        files["index.csv"] = len(index)
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
                       "continuing": None if rotated else int(len(caseload)) - n_new,
                       "left": None if rotated else n_left,
                       # the first rule (in config order) that selected each patient: the
                       # counts add up to caseload_rows; by_rule_any counts overlaps too
                       "by_rule": {name: int(first_rule.get(name, 0)) for name in rule_names},
                       "by_rule_any": selected.attrs.get("rule_counts", {}),
                       "by_pcn": {str(k): int(v) for k, v in
                                  caseload["pcn"].value_counts().sort_index().items()},
                       "unknown_pcn": int((caseload["pcn"] == "").sum())},
            "files": {rel: {"rows": files[rel], "sha256": hashes[rel]} for rel in sorted(files)},
            "data_quality_notes": notes,
            "versions": _versions(),
            "tie_rule": selected.attrs.get("tie_rule"),
            "note": "pseudonymised, not anonymised: pseudo ids can be re-linked by the key "
                    "holder, so these files remain personal data",
        }
        _sync_files(unsynced)  # the lists are on disk before the manifest says they exist
        _write_json(manifest, tmp / "manifest.json")  # written last
        stage("publish")
        final = runs / run_id
        reused = False
        _install_run(tmp, final)  # never replaces an existing run
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_current(out, run_id)
    logger.info("job: run %s published: %d caseload row(s) in %d PCN file(s)", run_id,
                len(caseload), sum(1 for r in files if r.startswith("caseload/")))
    changes = {"compared_with": previous["run_id"] if previous else None,
               **{k: manifest["counts"][k] for k in ("new", "continuing", "left")}}
    return JobResult(run_id=run_id, run_dir=final, manifest=manifest, reused=reused,
                     changes=changes)


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
efi = "efi_snomed_synthetic"
cms = "cms_snomed_synthetic"

[risk]
tier_cuts = [0.005, 0.05, 0.2]

[risk.fit]
method = "hgb"
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

[report]
title = "pophealth demo: population health report (synthetic data)"
xlsx = {xlsx}
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
    (['caseload/SYNPCN0001-3eff122e84ae.csv'], 2000)
    """
    from importlib.util import find_spec

    from pophealth.synthetic import write_population

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_population(out / "population", n_patients, random_state=random_state,
                     index_date=str(naive_timestamp(index_date).date()), progress=False)
    toml = out / "job.toml"
    toml.write_text(_DEMO_TOML.format(index_date=naive_timestamp(index_date).date(),
                                      seed=int(random_state), key_env=DEMO_KEY_ENV,
                                      xlsx=str(find_spec("openpyxl") is not None).lower()),
                    encoding="utf-8")
    return run_job(JobConfig.from_toml(toml), environ={DEMO_KEY_ENV: _DEMO_KEY})
