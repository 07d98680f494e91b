"""Job config: every problem is exit 78, one line, before any data is read; the
unrecognised-code threshold in [quality] is the one that applies; a key pasted as
key_env is never echoed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pophealth
from pophealth.cli import main
from pophealth.contracts.exceptions import ConfigError
from pophealth.jobs import DataQualityError, JobConfig, load_key, read_caseload, run_job
from pophealth.jobs.config import _check_include_columns

KEY = "5a" * 32


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def _write_toml(cfg: dict, path: Path) -> Path:
    lines = [f"{k} = {_toml_value(v)}" for k, v in cfg.items()
             if not isinstance(v, (dict, list)) or (isinstance(v, list) and k != "rules")]
    for k, v in cfg.items():
        if isinstance(v, dict):
            sub = {kk: vv for kk, vv in v.items() if not isinstance(vv, dict)}
            lines.append(f"[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in sub.items()]
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    lines.append(f"[{k}.{kk}]")
                    lines += [f"{a} = {_toml_value(b)}" for a, b in vv.items()]
    for rule in cfg.get("rules", []):
        lines.append("[[rules]]")
        lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in rule.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _base(inputs: Path, out: Path) -> dict:
    return {
        "index_date": "2025-04-01",
        "inputs": {"register": str(inputs / "register.parquet"),
                   "events": str(inputs / "events.parquet"),
                   "activity": str(inputs / "activity.parquet")},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top cost", "top_fraction": 0.05, "by": "practice",
                   "rank_column": "prior_cost"}],
        "output": {"dir": str(out), "rank_by": "prior_cost"},
        "pseudonymisation": {"key_env": "PH_CFG_KEY"},
    }


def _set(cfg: dict, dotted: str, value) -> dict:
    *path, last = dotted.split(".")
    node = cfg
    for part in path:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(last)
    else:
        node[last] = value
    return cfg


_DELETE = object()

# (dotted key, value, fragment of the one-line message)
BAD = [
    ("index_date", "01/04/2025", "YYYY-MM-DD"),
    ("index_date", "2025-13-01", "YYYY-MM-DD"),
    ("index_date", "2025-04-01T10:00:00", "YYYY-MM-DD"),
    ("risk.tier_cuts", ["a", "b", "c"], "tier_cuts needs three cumulative fractions"),
    ("risk.tier_cuts", [0.2, 0.05, 0.5], "strictly increasing"),
    ("risk.tier_cuts", [0.005, 0.05], "three"),
    ("risk.tier_cuts", [0.005, 0.05, 1.0], "strictly increasing fractions in (0, 1)"),
    ("output.include_columns", ["no_such_column"], "not allowed in caseload files"),
    ("output.include_columns", [1, 2], "list of column names"),
    ("output.include_columns", ["age", "age"], "listed twice"),
    ("output.include_columns", ["nhs_number"], "not allowed in caseload files"),
    ("quality.max_unrecognised_code_fraction", 1.5, "max_unrecognised_code_fraction must be"),
    ("quality.max_invalid_id_fraction", -0.01, "max_invalid_id_fraction must be a number in"),
    ("quality.max_unknown_patient_activity_fraction", 2, "[0, 1]"),
    ("quality.max_invalid_id_fraction", True, "wrong type"),
    ("codelists.efi", "efi_synthtic_pc", "unknown code list 'efi_synthtic_pc'"),
    ("codelists.efi", "lists/missing.csv", "code list file not found"),
    ("codelists.cms", "charlson_quan2005_icd10", "[codelists]"),
    ("risk.fit", {"method": "xgboost"}, "method must be one of hgb, logistic"),
    ("risk.fit", {"method": "hgb", "calibration": "platt"}, "calibration must be one of"),
    ("risk.fit", {"method": "hgb", "random_state": -1}, "random_state must be 0 or more"),
    ("output.rank_by", "riks", "rank_by 'riks' is not a numeric column"),
    ("output.rank_by", "segment", "rank_by 'segment' is not a numeric column"),
    ("output.format", "xlsx", "format"),
    ("segments.rules", "no_such_rules", "[segments] rules"),
    ("rules", [{"name": "r", "where": [["age", ">="]]}], "must be [column, op, value]"),
    ("rules", [{"name": "r", "where": [["age", "=>", 18]]}], "unknown op '=>'"),
    ("rules", [{"name": "r", "where": "age > 18"}], "where must be a list"),
    ("rules", [{"name": "r", "where": [["agee", ">=", 18]]}], "no column(s) ['agee']"),
    ("rules", [{"name": "r", "top_fraction": 1.5}], "top_fraction must be a number in (0, 1]"),
    ("rules", [{"name": "r", "top_fraction": "x"}], "top_fraction must be a number"),
    ("rules", [{"name": "r", "top_fraction": True}], "top_fraction must be a number"),
    ("rules", [{"top_fraction": 0.1}], "needs a name"),
    ("rules", [{"name": "r", "top_fraction": 0.1, "by": "practise",
                "rank_column": "prior_cost"}],
     "no column(s) ['practise']"),
    ("rules", [{"name": "r", "top_fraction": 0.1, "rank_column": "efi_band"}],
     "rank_column 'efi_band' is not numeric"),
    ("rules", [{"name": "r", "top_fraction": 0.1, "rank_column": "prior_cost"},
               {"name": "r", "where": [["age", ">=", 90]]}], "names must be unique"),
    ("pseudonymisation.key_env", "ph_lower", "environment variable name"),
]


@pytest.fixture(scope="module")
def garbage_inputs(tmp_path_factory):
    """Input files that exist but fail to read: any read would not exit 78."""
    root = tmp_path_factory.mktemp("garbage")
    for name in ("register", "events", "activity"):
        (root / f"{name}.parquet").write_bytes(b"PAR1 this is not parquet")
    return root


@pytest.mark.parametrize("inputs", ["absent", "garbage"])
@pytest.mark.parametrize("key, value, fragment", BAD, ids=[f"{k}={v!r}"[:60] for k, v, _ in BAD])
def test_every_config_error_is_exit_78_one_line_before_data_is_read(
        tmp_path, capsys, monkeypatch, garbage_inputs, inputs, key, value, fragment):
    src = tmp_path / "absent" if inputs == "absent" else garbage_inputs
    out = tmp_path / "out"
    path = _write_toml(_set(_base(src, out), key, value), tmp_path / "job.toml")
    monkeypatch.setenv("PH_CFG_KEY", KEY)
    assert main(["stratify", str(path)]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pophealth: bad configuration: ")
    assert fragment in err
    assert "Traceback" not in err
    assert not out.exists()  # not even the lock file: nothing was touched


@pytest.mark.parametrize("inputs, code", [("absent", 66), ("garbage", None)])
def test_control_the_same_valid_config_does_read_the_inputs(tmp_path, capsys, monkeypatch,
                                                            garbage_inputs, inputs, code):
    # proves the table above would not have exited 78 had the config been read lazily
    src = tmp_path / "absent" if inputs == "absent" else garbage_inputs
    path = _write_toml(_base(src, tmp_path / "out"), tmp_path / "job.toml")
    monkeypatch.setenv("PH_CFG_KEY", KEY)
    rc = main(["stratify", str(path)])
    err = capsys.readouterr().err
    assert rc not in (0, 78) and err.count("\n") == 1
    if code is not None:
        assert rc == code


def test_relative_code_list_and_rule_set_paths_resolve_against_the_config(tmp_path):
    from pophealth.core.codelists import load_codelist

    lists = tmp_path / "lists"
    lists.mkdir()
    load_codelist("efi_snomed_synthetic").table.to_csv(lists / "my_efi.csv", index=False)
    cfg = _base(tmp_path, tmp_path / "out")
    cfg["codelists"]["efi"] = "lists/my_efi.csv"
    got = JobConfig.from_dict(cfg, base_dir=tmp_path)
    assert got.codelists["efi"] == str(tmp_path / "lists" / "my_efi.csv")
    (lists / "broken.csv").write_text("condition,code\nx,\n")
    cfg["codelists"]["efi"] = "lists/broken.csv"
    with pytest.raises(ConfigError, match=r"^\[codelists\] efi: "):
        JobConfig.from_dict(cfg, base_dir=tmp_path)


def test_include_columns_hook_accepts_a_list_of_names_and_returns_a_tuple():
    assert _check_include_columns(["age", "prior_cost"]) == ("age", "prior_cost")
    with pytest.raises(ConfigError, match="list of column names"):
        _check_include_columns("age")


def test_boundary_fractions_are_accepted():
    cfg = _base(Path("/nowhere"), Path("/nowhere/out"))
    cfg["quality"] = {"max_invalid_id_fraction": 0, "max_unrecognised_code_fraction": 1,
                      "max_unknown_patient_activity_fraction": 0.5}
    cfg["rules"][0]["top_fraction"] = 1
    got = JobConfig.from_dict(cfg)
    assert got.quality == {"max_invalid_id_fraction": 0.0,
                           "max_unrecognised_code_fraction": 1.0,
                           "max_unknown_patient_activity_fraction": 0.5}


# ----------------------------------------------------------------- unrecognised codes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Ten patients and ten ICD-10 events, exactly one with an unrecognised code (1/10)."""
    from pophealth.contracts.nhs_number import test_range_numbers

    nhs = [str(x) for x in test_range_numbers()[:10]]
    root = tmp_path_factory.mktemp("tiny")
    pd.DataFrame({
        "patient_id": np.arange(1, 11), "nhs_number": nhs, "sex": ["F", "M"] * 5,
        "age": np.arange(60, 70), "lsoa": "E01000001", "practice": "P1", "pcn": "N1",
    }).to_parquet(root / "register.parquet")
    codes = ["I50", "E11", "J44", "N18", "C78", "F00", "I21", "K70", "G30", "NOT A CODE"]
    pd.DataFrame({
        "patient_id": np.arange(1, 11), "code": codes, "code_system": "icd10",
        "date": pd.Timestamp("2025-01-15"),
    }).to_parquet(root / "events.parquet")
    pd.DataFrame({
        "patient_id": np.arange(1, 11), "date": pd.Timestamp("2025-02-01"),
        "kind": "gp", "cost": np.arange(10, 110, 10, dtype=float),
    }).to_parquet(root / "activity.parquet")
    return root


def _tiny_config(tiny: Path, out: Path, threshold: float) -> dict:
    return {
        "index_date": "2025-04-01",
        "inputs": {k: str(tiny / f"{k}.parquet") for k in ("register", "events", "activity")},
        "segments": {"enabled": False},
        "rules": [{"name": "everyone aged 60+", "where": [["age", ">=", 60]]}],
        "output": {"dir": str(out), "rank_by": "prior_cost"},
        "pseudonymisation": {"key_env": "PH_CFG_KEY"},
        "quality": {"max_unrecognised_code_fraction": threshold},
    }


@pytest.mark.parametrize("threshold", [0.1, 0.2])
def test_the_configured_unrecognised_threshold_applies_not_an_internal_5_percent(
        tiny, tmp_path, threshold):
    # 1 of 10 ICD-10 rows is unrecognised: 10 % > the old internal 5 %, <= threshold
    res = run_job(JobConfig.from_dict(_tiny_config(tiny, tmp_path / "out", threshold)),
                  environ={"PH_CFG_KEY": KEY})
    assert len(read_caseload(res.run_dir)) == 10
    for index in ("charlson", "elixhauser", "hfrs"):
        assert res.manifest["counts"]["events"][index]["n_unrecognised"] == 1


def test_above_the_configured_unrecognised_threshold_is_exit_65_with_a_report(
        tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(DataQualityError, match=r"10\.0% > max_unrecognised=9\.0%") as exc:
        run_job(JobConfig.from_dict(_tiny_config(tiny, out, 0.09)),
                environ={"PH_CFG_KEY": KEY})
    report = json.loads(exc.value.report_path.read_text())
    assert report["status"] == "failed: data quality"
    assert not (out / "runs").exists()
    monkeypatch.setenv("PH_CFG_KEY", KEY)
    path = _write_toml(_tiny_config(tiny, tmp_path / "out2", 0.09), tmp_path / "job.toml")
    assert main(["stratify", str(path)]) == 65
    assert capsys.readouterr().err.count("\n") == 1


# ----------------------------------------------------------------- key pasted as key_env

KEY_LIKE = [
    "ab" * 32,                                   # lowercase hex, starts with a letter
    "AB" * 32,                                   # uppercase hex: a valid-looking name
    "DEADBEEF0123456789ABCDEF",                  # shorter upper hex
    "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3OA==",   # base64
    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",           # base32 (upper case, digits)
    "POPHEALTH_KEY_" + "A1B2C3D4E5F6A7B8C9D0",   # a key glued onto a plausible name
]


@pytest.mark.parametrize("sentinel", KEY_LIKE)
def test_a_key_pasted_as_key_env_is_refused_and_never_echoed(tmp_path, capsys, monkeypatch,
                                                             caplog, sentinel):
    cfg = _base(tmp_path / "absent", tmp_path / "out")
    cfg["pseudonymisation"]["key_env"] = sentinel
    with pytest.raises(ConfigError, match="environment variable name") as exc:
        JobConfig.from_dict(cfg)
    texts = [str(exc.value)]
    with pytest.raises(ConfigError) as exc:
        load_key(sentinel, environ={sentinel: KEY})
    texts.append(str(exc.value))
    monkeypatch.setenv("PH_CFG_KEY", KEY)
    assert main(["stratify", str(_write_toml(cfg, tmp_path / "job.toml"))]) == 78
    captured = capsys.readouterr()
    texts += [captured.err, captured.out, caplog.text]
    # also as an unknown key name in the config
    cfg = _base(tmp_path / "absent", tmp_path / "out")
    cfg["pseudonymisation"][sentinel.replace("=", "").replace("/", "")] = "x"
    with pytest.raises(ConfigError, match="unknown key") as exc:
        JobConfig.from_dict(cfg)
    texts.append(str(exc.value))
    blob = "\n".join(texts)
    assert "key_env" in blob
    for fragment in (sentinel, sentinel[:16], sentinel[-16:]):
        assert fragment not in blob


def test_real_subprocess_never_echoes_a_pasted_key(tmp_path):
    sentinel = secrets.token_hex(32).upper()  # random each run: cannot be special-cased
    cfg = _base(tmp_path / "absent", tmp_path / "out")
    cfg["pseudonymisation"]["key_env"] = sentinel
    path = _write_toml(cfg, tmp_path / "job.toml")
    env = {**os.environ, "PYTHONPATH": str(Path(pophealth.__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "pophealth.cli", "stratify", str(path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 78
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert sentinel not in proc.stderr + proc.stdout
    assert sentinel[:16] not in proc.stderr + proc.stdout


@pytest.mark.parametrize("name", ["POPHEALTH_KEY", "PH_KEY_2025", "_K", "PH_" + "X" * 61])
def test_plausible_variable_names_are_accepted(tmp_path, name):
    cfg = _base(tmp_path, tmp_path / "out")
    cfg["pseudonymisation"]["key_env"] = name
    assert JobConfig.from_dict(cfg).key_env == name
    assert len(load_key(name, environ={name: KEY})) == 32


def test_a_65_character_name_is_refused():
    with pytest.raises(ConfigError, match=r"\(65 characters\) is not shown"):
        load_key("A" * 65, environ={})


def test_segments_without_an_efi_list_load_for_gp_data(tmp_path):
    """GP data has no open eFI deficit list: segments then use recorded frailty, and the
    eFI rule selects nobody (warned at run time) - a config without eFI is not an error."""
    import warnings

    from pophealth.contracts.exceptions import DataQualityWarning

    cfg = _set(_base(tmp_path, tmp_path / "out"), "codelists.efi", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)  # the dry run shows no notes
        got = JobConfig.from_dict(cfg, base_dir=tmp_path)
    assert got.segments and got.codelists["efi"] == "none"
