"""Full leak scan (issue 16 item 3): a failing job never shows an input value.

Every input column of the register, events and activity carries sentinel values
(:mod:`leak_sentinels`): valid and invalid NHS numbers, patient ids, LSOA/practice/PCN/ICB
codes, event codes and code systems, dates, costs, free text. Each failure path - every
exit code (65 through each data-quality rule, 66, 70, 73, 74, 75, 78) - is driven through
``run_job`` (exception str, repr, ``problems`` and formatted traceback) and through the CLI
in-process with ``-v`` and ``-vv`` (stdout, stderr, every log record at DEBUG: message,
args and exception text; every warning). Every file under the output directory is scanned
too - data-quality reports strictly; caseload, changes and practice lists, ``index.csv``
and the manifest allow only the practice and PCN codes their contract carries. One failing
config also runs as a real ``pophealth -v stratify`` process and its real stderr is scanned.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from leak_sentinels import (
    INDEX_DATE,
    KEY_ENV,
    KEY_HEX,
    UNKNOWN_ID_BASE,
    Sentinels,
    invalid_nhs_numbers,
    job_config,
    sentinel_population,
    write_toml,
)

import pophealth
from pophealth.cli import main
from pophealth.contracts.exceptions import ConfigError, PopHealthError, SchemaError
from pophealth.jobs import JobConfig, JobLockedError, RunStoreError, output_lock, run_job
from pophealth.jobs import run as jobrun

SRC = str(Path(pophealth.__file__).resolve().parents[1])
OTHER_KEY_HEX = "a7" * 32
#: output files whose contract carries practice and PCN codes (never patient values)
_ORG_CODE_FILES = ("caseload/", "changes/", "practice/", "index.csv", "manifest.json")


@pytest.fixture(scope="module")
def base():
    return sentinel_population()


# ----------------------------------------------------------------- the scanner itself


def test_the_scanner_finds_every_kind_of_sentinel(base):
    reg, ev, act, sent = base
    assert "9990000018" in sent.nhs and "9990000019" in sent.nhs  # valid and invalid
    assert str(reg["patient_id"].iloc[0]) in sent.ids
    planted = {
        "nhs": "x 9990000018 y", "nhs piece": "id=99900000", "spaced nhs": "999 000 0018",
        "id": f"row {reg['patient_id'].iloc[7]}", "lsoa": reg["lsoa"].iloc[0].lower(),
        "practice": reg["practice"].iloc[0], "text": reg["note"].iloc[3],
        "code": ev["code"].iloc[-15], "system": ev["code_system"].iloc[-1],
        "dob": str(reg["date_of_birth"].iloc[4].date()),
        "compact dob": reg["date_of_birth"].iloc[4].strftime("%Y%m%d"),
        "event date": "1901-02-03", "cost": "cost 31415.93", "ethnicity": reg["ethnicity"][0],
    }
    for what, text in planted.items():
        assert sent.find(text), what
    assert sent.find(reg["practice"].iloc[0], org_codes_allowed=True) == []
    assert sent.find(reg["lsoa"].iloc[0], org_codes_allowed=True) != []
    clean = (f"register: column 'nhs_number' breaks rule 'x' in 30 row(s); first positions "
             f"[10, 11]; index date {INDEX_DATE}; file caseload/SENTPCN01-0123456789ab.csv")
    assert sent.find(clean) == []


# ----------------------------------------------------------------- data-quality cases


def _set(frame, col, rows, values):
    frame = frame.copy()
    frame[col] = frame[col].astype(object)
    frame.loc[rows, col] = values
    return frame


def _nhs_invalid(reg, ev, act):
    return _set(reg, "nhs_number", range(10, 40), invalid_nhs_numbers(32)[2:]), ev, act


def _nhs_duplicate(reg, ev, act):
    return _set(reg, "nhs_number", range(10, 40), reg["nhs_number"].iloc[40:70].tolist()), ev, act


def _id_duplicate(reg, ev, act):
    reg = reg.copy()
    reg.loc[10:19, "patient_id"] = reg.loc[20:29, "patient_id"].to_numpy()
    return reg, ev, act


def _id_null(reg, ev, act):
    reg = reg.copy()
    reg["patient_id"] = reg["patient_id"].astype(float)
    reg.loc[10:12, "patient_id"] = np.nan
    return reg, ev, act


def _sex(reg, ev, act):
    return _set(reg, "sex", range(10, 15), [f"SENTSEX{i:02d}" for i in range(5)]), ev, act


def _age(reg, ev, act):
    return _set(reg, "age", range(10, 15), [130, 131, 132, 133, 134]).astype(
        {"age": float}), ev, act


def _dob_after_index(reg, ev, act):
    reg = reg.copy()
    reg.loc[10:14, "date_of_birth"] = pd.date_range("2031-02-03", periods=5)
    return reg, ev, act


def _death_before_birth(reg, ev, act):
    reg = reg.copy()
    reg.loc[10:14, "date_of_death"] = pd.date_range("1899-12-25", periods=5)
    return reg, ev, act


def _imd(reg, ev, act):
    reg = reg.copy()
    reg.loc[10:14, "imd_decile"] = 11
    return reg, ev, act


def _lsoa_as_ids(reg, ev, act):
    return reg.assign(lsoa=reg["patient_id"].to_numpy()), ev, act


def _no_pcn(reg, ev, act):
    return reg.drop(columns=["pcn"]), ev, act


def _practice_misspelt(reg, ev, act):
    return reg.rename(columns={"practice": "practise"}), ev, act


def _registered_from_text(reg, ev, act):
    return reg.assign(registered_from=reg["registered_from"].dt.strftime("%Y-%m-%d")), ev, act


def _setting(reg, ev, act):
    return reg, _set(ev, "setting", range(10, 15), [f"SENTSET{i:02d}" for i in range(5)]), act


def _code_null(reg, ev, act):
    return reg, _set(ev, "code", range(10, 15), None), act


def _system_null(reg, ev, act):
    return reg, _set(ev, "code_system", range(10, 15), None), act


def _unrecognised(reg, ev, act):
    rows = np.flatnonzero((ev["code_system"] == "icd10").to_numpy())[::2]
    return reg, _set(ev, "code", rows, [f"ZZ99SENT{i:05d}" for i in range(len(rows))]), act


def _event_ids_text(reg, ev, act):
    return reg, ev.assign(patient_id=[f"SENTID-{i:05d}" for i in range(len(ev))]), act


def _event_dates_text(reg, ev, act):
    return reg, ev.assign(date=ev["date"].dt.strftime("%Y-%m-%d")), act


def _event_id_text_after_the_first_csv_block(reg, ev, act):
    # Arrow infers CSV types from the first block (1 MiB): a later bad value used to raise
    # ArrowInvalid quoting it (run_job) and exit 70 'internal error' (CLI)
    ev = pd.concat([ev] * 8, ignore_index=True)
    return reg, _set(ev, "patient_id", [len(ev) - 1], "SENTID-99999"), act


def _kind(reg, ev, act):
    return reg, ev, _set(act, "kind", range(10, 15), [f"SENTKIND{i:02d}" for i in range(5)])


def _cost_negative(reg, ev, act):
    return reg, ev, _set(act, "cost", range(10, 12), [-31415.93, -27182.82]).astype(
        {"cost": float})


def _cost_inf(reg, ev, act):
    return reg, ev, _set(act, "cost", range(10, 12), np.inf).astype({"cost": float})


def _cost_null(reg, ev, act):
    return reg, ev, _set(act, "cost", range(10, 12), np.nan).astype({"cost": float})


def _activity_date_null(reg, ev, act):
    act = act.copy()
    act.loc[10:12, "date"] = pd.NaT
    return reg, ev, act


def _los_negative(reg, ev, act):
    return reg, ev, act.assign(length_of_stay=-act["length_of_stay"] - 1)


def _unknown_patients(reg, ev, act):
    act = act.copy()
    act.loc[:199, "patient_id"] = UNKNOWN_ID_BASE + np.arange(200)
    return reg, ev, act


@dataclass(frozen=True)
class Case:
    name: str
    mutate: object
    fragment: str  # the rule (or column) the one stderr line must name
    code: int = 65
    csv: tuple = ()  # inputs written as CSV instead of Parquet


DATA_CASES = [
    Case("nhs_number invalid", _nhs_invalid, "max_invalid_id_fraction"),
    Case("nhs_number duplicated", _nhs_duplicate, "max_invalid_id_fraction"),
    Case("patient_id duplicated", _id_duplicate, "'unique'"),
    Case("patient_id null", _id_null, "'patient_id'"),
    Case("sex code", _sex, "sex_code"),
    Case("age range", _age, "age_range"),
    Case("date_of_birth after index", _dob_after_index, "not_after_index_date"),
    Case("death before birth", _death_before_birth, "death_after_birth"),
    Case("imd_decile range", _imd, "imd_decile_range"),
    Case("lsoa not text", _lsoa_as_ids, "'lsoa' breaks rule 'dtype'"),
    Case("pcn missing", _no_pcn, "'pcn'"),
    Case("practice misspelt", _practice_misspelt, "missing_column"),
    Case("registered_from text", _registered_from_text, "'registered_from' breaks rule"),
    Case("setting code", _setting, "setting_code"),
    Case("code null", _code_null, "'code' breaks rule 'not_null'"),
    Case("code_system null", _system_null, "'code_system' breaks rule 'not_null'"),
    Case("codes unrecognised", _unrecognised, "recognised_code"),
    Case("event patient_id text", _event_ids_text, "patient_id"),
    Case("event date text", _event_dates_text, "'date' breaks rule"),
    Case("activity kind", _kind, "activity_kind"),
    Case("cost negative", _cost_negative, "cost_non_negative"),
    Case("cost infinite", _cost_inf, "'cost' breaks rule 'finite'"),
    Case("cost null", _cost_null, "'cost' breaks rule 'not_null'"),
    Case("activity date null", _activity_date_null, "'date' breaks rule 'not_null'"),
    Case("length_of_stay negative", _los_negative, "non_negative"),
    Case("activity for unknown patients", _unknown_patients, "max_unknown_patient_activity_fraction"),
    Case("csv register: text in a number column",
         lambda r, e, a: (_set(r, "age", [250], "SENTINEL-TEXT-AGE"), e, a), "age",
         csv=("register",)),
    Case("csv events: text in a date column",
         lambda r, e, a: (r, _set(e, "date", [len(e) - 1], "SENTINEL-TEXT-DATE"), a), "date",
         csv=("events",)),
    Case("csv events: text id after the first block", _event_id_text_after_the_first_csv_block,
         "'patient_id' breaks rule 'csv_type'", csv=("events",)),
]


def _write(root: Path, reg, ev, act, csv=()) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("register", reg), ("events", ev), ("activity", act)):
        paths[name] = root / (f"{name}.csv" if name in csv else f"{name}.parquet")
        if name in csv:
            frame.to_csv(paths[name], index=False)
        else:
            frame.to_parquet(paths[name])
    return paths


def _attempt(cfg: dict, key: str = KEY_HEX):
    """Load and run a config in-process; the exception it raised (the test expects one)."""
    with pytest.raises(Exception) as info:
        run_job(JobConfig.from_dict(cfg), environ={KEY_ENV: key})
    return info.value


def _exception_texts(exc: BaseException) -> list[str]:
    return ["".join(traceback.format_exception(exc)), repr(exc), str(exc),
            repr(getattr(exc, "problems", None)), repr(getattr(exc, "counts", None))]


def _cli(argv_tail: list[str], code: int, capsys, caplog) -> tuple[list[str], str]:
    """Run the CLI in-process with -v and with -vv: every text it produced, and the
    stderr of both runs."""
    texts, errs = [], ""
    for flag in ("-v", "-vv"):
        caplog.clear()
        assert main([flag, *argv_tail]) == code
        captured = capsys.readouterr()
        assert captured.err.count("\n") == (0 if code == 0 else 1)
        texts += [captured.out, captured.err]
        texts += _log_texts(caplog)
        errs += captured.err
    return texts, errs


def _log_texts(caplog) -> list[str]:
    out = []
    for rec in caplog.records:
        out += [rec.getMessage(), repr(rec.args), rec.exc_text or "",
                "".join(traceback.format_exception(*rec.exc_info)) if rec.exc_info else ""]
    return out


def _file_leaks(out: Path, sent: Sentinels) -> dict:
    """Sentinels found in each file under ``out`` (org codes allowed where contracted)."""
    found = {}
    files = [p for p in out.rglob("*") if p.is_file()]
    for p in files:
        rel = p.relative_to(out).as_posix()
        parts = rel.split("/")
        in_run = len(parts) >= 3 and parts[0] == "runs" and not parts[1].startswith(".")
        allowed = in_run and "/".join(parts[2:]).startswith(_ORG_CODE_FILES)
        hits = sent.find(rel + "\n" + p.read_bytes().decode("utf-8", "replace"),
                         org_codes_allowed=allowed)
        if hits:
            found[rel] = hits
    return found


def _assert_clean(sent: Sentinels, texts: list[str], out: Path, recwarn) -> None:
    texts = [*texts, *(str(w.message) for w in recwarn)]
    leaks = {i: sent.find(t) for i, t in enumerate(texts)}
    leaks = {i: hits for i, hits in leaks.items() if hits}
    assert leaks == {}, [(hits, texts[i][:300]) for i, hits in leaks.items()]
    assert _file_leaks(out, sent) == {}
    assert sum(len(t) for t in texts) > 500  # the scan looked at real text


@pytest.mark.parametrize("case", DATA_CASES, ids=[c.name for c in DATA_CASES])
def test_a_data_quality_failure_never_shows_an_input_value(base, case, tmp_path, capsys,
                                                           caplog, recwarn, monkeypatch):
    caplog.set_level(logging.DEBUG)
    reg, ev, act, sent = base
    reg, ev, act = case.mutate(reg, ev, act)
    sent = Sentinels(set(sent.nhs), set(sent.ids), set(sent.dates), set(sent.strings))
    for frame in (reg, ev, act):
        sent.add_frame(frame)
    out = tmp_path / "out"
    cfg = job_config(_write(tmp_path / "in", reg, ev, act, case.csv), out)
    exc = _attempt(cfg)
    assert isinstance(exc, SchemaError), type(exc).__name__
    texts = _exception_texts(exc)
    monkeypatch.setenv(KEY_ENV, KEY_HEX)
    cli_texts, errs = _cli(["stratify", str(write_toml(cfg, tmp_path / "job.toml"))],
                           case.code, capsys, caplog)
    texts += cli_texts
    assert errs.count(case.fragment) >= 2 and errs.count("nothing published") == 2
    reports = list((out / "reports").glob("*-data-quality.json"))
    assert len(reports) == 1 and not (out / "runs").exists()
    _assert_clean(sent, texts, out, recwarn)


# ----------------------------------------------------------------- the other exit codes


@pytest.fixture
def published(base, tmp_path, monkeypatch):
    """Sentinel inputs, a completed run under ``out`` and its config (key in the env)."""
    reg, ev, act, sent = base
    out = tmp_path / "out"
    cfg = job_config(_write(tmp_path / "in", reg, ev, act), out)
    first = run_job(JobConfig.from_dict(cfg), environ={KEY_ENV: KEY_HEX})
    monkeypatch.setenv(KEY_ENV, KEY_HEX)
    return cfg, first, sent


def _check_other(cfg, code, exc_type, sent, tmp_path, capsys, caplog, recwarn, key=KEY_HEX,
                 fragment=""):
    exc = _attempt(cfg, key)
    assert isinstance(exc, exc_type), type(exc).__name__
    texts = _exception_texts(exc)
    cli_texts, errs = _cli(["stratify", str(write_toml(cfg, tmp_path / "job.toml"))], code,
                           capsys, caplog)
    texts += cli_texts
    assert errs.count(fragment) == 2
    _assert_clean(sent, texts, Path(cfg["output"]["dir"]), recwarn)


def test_missing_input_exit_66_shows_no_value(published, tmp_path, capsys, caplog, recwarn):
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    cfg["inputs"]["events"] = str(tmp_path / "in" / "absent.parquet")
    _check_other(cfg, 66, FileNotFoundError, sent, tmp_path, capsys, caplog, recwarn,
                 fragment="missing input")


def test_damaged_run_exit_73_shows_no_value(published, tmp_path, capsys, caplog, recwarn):
    caplog.set_level(logging.DEBUG)
    cfg, first, sent = published
    victim = sorted((first.run_dir / "caseload").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-2] ^= 1
    victim.write_bytes(bytes(data))
    _check_other(cfg, 73, RunStoreError, sent, tmp_path, capsys, caplog, recwarn,
                 fragment="does not match its manifest")


def test_disk_full_exit_74_shows_no_value(published, tmp_path, capsys, caplog, recwarn,
                                          monkeypatch):
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    real = jobrun._write_bytes  # every list file is written through it

    def full(data, target, **kw):
        if len(list(target.parent.parent.rglob("*.csv"))) > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(data, target, **kw)

    monkeypatch.setattr(jobrun, "_write_bytes", full)
    cfg = {**cfg, "rules": cfg["rules"][:1]}  # a new run id
    _check_other(cfg, 74, OSError, sent, tmp_path, capsys, caplog, recwarn,
                 fragment="No space left on device")


def test_locked_exit_75_shows_no_value(published, tmp_path, capsys, caplog, recwarn):
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    with output_lock(cfg["output"]["dir"]):
        _check_other(cfg, 75, JobLockedError, sent, tmp_path, capsys, caplog, recwarn,
                     fragment="another run holds the lock")


def test_rotated_key_exit_78_shows_no_value(published, tmp_path, capsys, caplog, recwarn,
                                            monkeypatch):
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    monkeypatch.setenv(KEY_ENV, OTHER_KEY_HEX)
    _check_other(cfg, 78, ConfigError, sent, tmp_path, capsys, caplog, recwarn,
                 key=OTHER_KEY_HEX, fragment="fingerprint differs")


@pytest.mark.parametrize("section, values, fragment", [
    ("output", {"include_columns": ["nhs_number"]}, "not allowed in caseload files"),
    ("output", {"include_columns": ["lsoa"]}, "not allowed in caseload files"),
    ("pseudonymisation", {"key_env": "PH_LEAK_KEY_ABSENT"}, "is not set"),
    ("quality", {"max_invalid_id_fraction": 2.0}, "max_invalid_id_fraction"),
])
def test_config_errors_exit_78_show_no_value(published, tmp_path, capsys, caplog, recwarn,
                                             section, values, fragment):
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    cfg = {**cfg, section: {**cfg.get(section, {}), **values}}
    _check_other(cfg, 78, ConfigError, sent, tmp_path, capsys, caplog, recwarn,
                 fragment=fragment)


def test_an_internal_error_exit_70_shows_no_value(published, tmp_path, capsys, caplog,
                                                  recwarn, monkeypatch):
    # a bug deep in the job that raises with data in its message: the CLI names only the
    # type and place; run_job's caller gets the raw exception (it is not caught there)
    caplog.set_level(logging.DEBUG)
    cfg, _, sent = published
    def broken(patients, *args, **kwargs):
        raise KeyError(patients["_pseudo_source"].iloc[0])

    monkeypatch.setattr(jobrun, "select_caseload", broken)
    cfg = {**cfg, "rules": cfg["rules"][:1]}
    exc = _attempt(cfg)
    assert isinstance(exc, KeyError) and not isinstance(exc, PopHealthError)
    assert sent.find(str(exc))  # the planted bug does carry a value ...
    texts, errs = _cli(["stratify", str(write_toml(cfg, tmp_path / "job.toml"))], 70, capsys,
                       caplog)
    assert errs.count("internal error: KeyError in broken") == 2
    _assert_clean(sent, texts, Path(cfg["output"]["dir"]), recwarn)  # ... the CLI does not


def test_a_successful_run_with_every_option_shows_no_value(published, tmp_path, capsys,
                                                           caplog, recwarn):
    caplog.set_level(logging.DEBUG)
    cfg, first, sent = published
    cfg = {**cfg, "output": {**cfg["output"],
                             "include_columns": ["age", "sex", "imd_decile", "efi",
                                                 "prior_emergency_admissions"]}}
    texts, errs = _cli(["stratify", str(write_toml(cfg, tmp_path / "job.toml"))], 0, capsys,
                       caplog)
    assert errs == ""
    # the caseload really holds patients, by pseudo id only
    assert first.manifest["counts"]["caseload_rows"] > 10
    _assert_clean(sent, texts, Path(cfg["output"]["dir"]), recwarn)


# ----------------------------------------------------------------- a real process


def test_a_real_failing_process_prints_no_value_on_stderr(base, tmp_path):
    reg, ev, act, sent = base
    reg, ev, act = _nhs_invalid(reg, ev, act)
    sent = Sentinels(set(sent.nhs), set(sent.ids), set(sent.dates), set(sent.strings))
    sent.add_frame(reg)
    cfg = job_config(_write(tmp_path / "in", reg, ev, act), tmp_path / "out")
    toml = write_toml(cfg, tmp_path / "job.toml")
    env = {**os.environ, "PYTHONPATH": SRC, KEY_ENV: KEY_HEX, "PYTHONWARNINGS": "always"}
    proc = subprocess.run([sys.executable, "-m", "pophealth.cli", "-v", "stratify", str(toml)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 65
    assert "INFO pophealth.jobs.run: job: read 300 register" in proc.stderr  # -v logs shown
    assert "max_invalid_id_fraction" in proc.stderr
    assert sent.find(proc.stderr) == [] and sent.find(proc.stdout) == []
    assert _file_leaks(tmp_path / "out", sent) == {}
