"""The stratification job: outputs, reruns, changes, exit codes and injected faults."""

from __future__ import annotations

import errno
import json
import logging
import os

import numpy as np
import pandas as pd
import pytest

from pophealth.cli import main
from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.nhs_number import is_valid_nhs_number
from pophealth.jobs import (
    DataQualityError,
    JobConfig,
    JobLockedError,
    RunStoreError,
    output_lock,
    read_caseload,
    run_job,
)
from pophealth.jobs import run as jobs
from pophealth.jobs.pseudonymise import key_fingerprint

KEY_A = "11" * 32
KEY_B = "22" * 32
SENTINEL_NHS = "9990000018"  # valid Modulus 11, never-issued 999 range
SENTINEL_ID = 987654321


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """A small synthetic population with one sentinel patient who is certainly selected."""
    from pophealth.synthetic import make_population

    pop = make_population(3_000, random_state=11, index_date="2025-04-01")
    reg, ev, act = pop.register.copy(), pop.events.copy(), pop.activity.copy()
    assert is_valid_nhs_number([SENTINEL_NHS])[0]
    assert SENTINEL_NHS not in set(reg["nhs_number"])
    old = reg.loc[0, "patient_id"]
    reg.loc[0, ["patient_id", "nhs_number"]] = [SENTINEL_ID, SENTINEL_NHS]
    ev["patient_id"] = ev["patient_id"].replace(old, SENTINEL_ID)
    act["patient_id"] = act["patient_id"].replace(old, SENTINEL_ID)
    big = pd.DataFrame({"patient_id": SENTINEL_ID, "date": pd.Timestamp("2025-01-10"),
                        "kind": pd.Categorical(["emergency_admission"] * 3,
                                               categories=act["kind"].cat.categories),
                        "cost": 50_000.0, "length_of_stay": 10})
    act = pd.concat([act, big], ignore_index=True)
    root = tmp_path_factory.mktemp("pop")
    reg.to_parquet(root / "register.parquet")
    ev.to_parquet(root / "events.parquet")
    act.to_parquet(root / "activity.parquet")
    out = pop.outcomes.reset_index()
    out.loc[out["patient_id"] == old, "patient_id"] = SENTINEL_ID
    out.to_parquet(root / "outcomes.parquet")
    return root


def _config(pop, out, **overrides) -> dict:
    cfg = {
        "index_date": "2025-04-01",
        "name": "test",
        "inputs": {"register": str(pop / "register.parquet"),
                   "events": str(pop / "events.parquet"),
                   "activity": str(pop / "activity.parquet")},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top 5% cost per practice", "top_fraction": 0.05, "by": "practice",
                   "rank_column": "prior_cost"},
                  {"name": "frail with 2+ admissions",
                   "where": [["segment", "==", "Frailty and dementia (long decline)"],
                             ["prior_emergency_admissions", ">=", 2]]}],
        "output": {"dir": str(out), "rank_by": "prior_cost"},
        "pseudonymisation": {"key_env": "PH_TEST_KEY"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _toml(cfg: dict, path) -> str:
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in cfg.items() if not isinstance(v, (dict, list))]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    for rule in cfg.get("rules", []):
        lines.append("[[rules]]")
        lines += [f"{kk} = {val(vv)}" for kk, vv in rule.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _run(pop, out, key=KEY_A, **overrides):
    return run_job(JobConfig.from_dict(_config(pop, out, **overrides)),
                   environ={"PH_TEST_KEY": key})


def _tree(path):
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- outputs


def test_job_publishes_caseload_changes_and_manifest(population, tmp_path):
    res = _run(population, tmp_path / "out", output={"per_practice": True})
    run = tmp_path / "out" / "current"
    assert run.resolve() == res.run_dir.resolve()
    m = json.loads((run / "manifest.json").read_text())
    for key in ("pophealth_version", "config_hash", "input_hashes", "key_fingerprint",
                "index_date", "run_id", "counts", "files", "versions"):
        assert key in m
    assert m["key_fingerprint"] == key_fingerprint(bytes.fromhex(KEY_A))
    assert set(m["input_hashes"]) == {"register", "events", "activity"}
    assert m["counts"]["register_rows_in"] == 3000 and m["counts"]["patients_included"] == 3000
    assert m["index_date"] == "2025-04-01"
    cl = read_caseload(run)
    assert list(cl.columns[:10]) == ["pseudo_id", "pcn", "practice", "rank", "segment",
                                     "status", "rule", "reasons", "index_date", "run_id"]
    assert not {"nhs_number", "patient_id", "date_of_birth"} & set(cl.columns)
    assert cl["pseudo_id"].str.fullmatch(r"[0-9a-f]{32}").all() and cl["pseudo_id"].is_unique
    assert (cl["status"] == "new").all()
    assert m["counts"]["caseload_rows"] == len(cl) == sum(
        v["rows"] for k, v in m["files"].items() if k.startswith("caseload/"))
    practices = read_caseload(run, kind="practice")
    assert len(practices) == len(cl)
    assert (practices.groupby("practice")["rank"].min() == 1).all()
    for _, part in cl.groupby("pcn"):
        assert part["rank"].tolist() == list(range(1, len(part) + 1))
        assert part["rank"].is_monotonic_increasing
    assert cl["reasons"].str.startswith("selected by: ").all()
    changes = read_caseload(run, kind="changes")
    assert (changes["change"] == "new").all() and len(changes) == len(cl)


def test_rerun_gives_identical_content_and_the_same_run_id(population, tmp_path):
    a = _run(population, tmp_path / "a")
    again = _run(population, tmp_path / "a")
    b = _run(population, tmp_path / "b")
    assert a.run_id == again.run_id == b.run_id
    assert again.reused
    ta, tb = _tree(a.run_dir), _tree(b.run_dir)
    ma, mb = json.loads(ta.pop("manifest.json")), json.loads(tb.pop("manifest.json"))
    assert ta == tb and len(ta) >= 2
    assert ma.pop("config")["output"].pop("dir") != mb.pop("config")["output"].pop("dir")
    assert ma == mb
    # a damaged completed run is never rebuilt over: the job refuses and leaves it as is
    for p in a.run_dir.rglob("*.csv"):
        p.unlink()
    (a.run_dir / "manifest.json").write_text("{}")
    with pytest.raises(RunStoreError, match="never rewritten"):
        _run(population, tmp_path / "a")
    assert _tree(a.run_dir) == {"manifest.json": b"{}"}


def test_changes_since_previous_run_and_stable_on_rerun(population, tmp_path):
    out = tmp_path / "out"
    first = _run(population, out)
    second_cfg = dict(rules=[{"name": "top 3% cost per practice", "top_fraction": 0.03,
                              "by": "practice", "rank_column": "prior_cost"},
                             {"name": "aged 95+", "where": [["age", ">=", 95]]}])
    second = _run(population, out, **second_cfg)
    assert second.run_id != first.run_id
    assert second.manifest["previous_run_id"] == first.run_id
    old, new = read_caseload(first.run_dir), read_caseload(second.run_dir)
    changes = read_caseload(second.run_dir, kind="changes")
    expect_new = set(new["pseudo_id"]) - set(old["pseudo_id"])
    expect_left = set(old["pseudo_id"]) - set(new["pseudo_id"])
    assert expect_new and expect_left
    assert set(changes.loc[changes["change"] == "new", "pseudo_id"]) == expect_new
    assert set(changes.loc[changes["change"] == "left", "pseudo_id"]) == expect_left
    assert second.manifest["counts"]["new"] == len(expect_new)
    status = new.set_index("pseudo_id")["status"]
    assert (status[list(expect_new)] == "new").all()
    assert (status.drop(list(expect_new)) == "continuing").all()
    # rerunning the second job compares with the first run again: identical content
    before = _tree(second.run_dir)
    rerun = _run(population, out, **second_cfg)
    assert rerun.run_id == second.run_id and _tree(rerun.run_dir) == before


def test_job_with_risk_model_fit_and_tiers(population, tmp_path):
    res = _run(population, tmp_path / "out",
               inputs={"outcomes": str(population / "outcomes.parquet")},
               risk={"fit": {"method": "logistic", "outcome": "emergency_admission"}},
               rules=[{"name": "top 2% risk per practice", "top_fraction": 0.02,
                       "by": "practice"}],
               output={"rank_by": "risk"})
    cl = read_caseload(res.run_dir)
    # ceil(2 % of n) >= 1 per practice: every practice is on the list (else the checks
    # below would pass on an empty caseload)
    practices = pd.read_parquet(population / "register.parquet")["practice"]
    assert set(cl["practice"]) == set(practices)
    assert cl["risk"].between(0, 1).all()
    assert set(cl["tier"]) <= {"very high", "high", "moderate", "low"}
    for _, part in cl.groupby("pcn"):
        assert part["risk"].is_monotonic_decreasing


def test_job_with_a_saved_model_records_it_and_refuses_mismatched_features(population,
                                                                           tmp_path):
    from pophealth.core.batch import score_patients
    from pophealth.risk.features import make_features
    from pophealth.risk.model_io import save_model
    from pophealth.risk.models import RiskModel

    reg = pd.read_parquet(population / "register.parquet")
    ev = pd.read_parquet(population / "events.parquet")
    act = pd.read_parquet(population / "activity.parquet")
    y = pd.read_parquet(population / "outcomes.parquet").set_index("patient_id")
    with pytest.warns(Warning):
        scores = score_patients(reg, ev, index_date="2025-04-01",
                                codelists={"efi": "efi_snomed_synthetic"})
    X = make_features(reg, scores, act, index_date="2025-04-01")
    model = RiskModel(method="logistic").fit(X, y["emergency_admission"].reindex(X.index))
    path = save_model(model, tmp_path / "model.zip",
                      training_period=("2024-04-01", "2026-03-31"), performance={"auroc": 0.7})
    res = _run(population, tmp_path / "out", risk={"model": str(path)},
               rules=[{"name": "top 1% risk", "top_fraction": 0.01}], output={"rank_by": "risk"})
    assert res.manifest["risk_model"]["source"] == "saved model"
    assert res.manifest["risk_model"]["performance"] == {"auroc": 0.7}
    assert "risk_model" in res.manifest["input_hashes"]
    cl = read_caseload(res.run_dir)
    assert len(cl) == 30 and cl["risk"].is_monotonic_decreasing
    # a model trained without eFI features cannot score a job that computes them
    with pytest.raises(DataQualityError, match="unexpected column"):
        _run(population, tmp_path / "out2", risk={"model": str(path)},
             codelists={"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"},
             rules=[{"name": "top 1% risk", "top_fraction": 0.01}], output={"rank_by": "risk"})


# ----------------------------------------------------------------- config and exit codes


def test_unknown_key_is_exit_78_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path / "does-not-exist", tmp_path / "out")
    cfg["output"]["colour"] = "blue"
    path = _toml(cfg, tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    assert main(["stratify", path]) == 78
    err = capsys.readouterr().err
    assert "unknown key 'colour' in [output]" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("section, key, value, message", [
    ("pseudonymisation", "key", KEY_A, "unknown key 'key'"),
    ("pseudonymisation", "key_env", KEY_A, "must be an environment variable name"),
    ("output", "include_columns", ["nhs_number"], "not allowed in caseload files"),
    ("output", "format", "xlsx", "format"),
])
def test_bad_config_values_are_config_errors(tmp_path, section, key, value, message):
    cfg = _config(tmp_path, tmp_path / "out")
    cfg[section][key] = value
    with pytest.raises(ConfigError, match=message) as exc:
        JobConfig.from_dict(cfg)
    assert KEY_A not in str(exc.value)


def test_missing_key_is_exit_78_before_data(tmp_path, capsys, monkeypatch):
    path = _toml(_config(tmp_path / "absent", tmp_path / "out"), tmp_path / "job.toml")
    monkeypatch.delenv("PH_TEST_KEY", raising=False)
    assert main(["stratify", path]) == 78
    assert "PH_TEST_KEY is not set" in capsys.readouterr().err


def test_missing_input_is_exit_66(tmp_path, capsys, monkeypatch):
    path = _toml(_config(tmp_path / "absent", tmp_path / "out"), tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    assert main(["stratify", path]) == 66
    assert capsys.readouterr().err.startswith("pophealth: missing input:")


def test_cli_stratify_success(population, tmp_path, capsys, monkeypatch):
    path = _toml(_config(population, tmp_path / "out"), tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    assert main(["stratify", path]) == 0
    out = capsys.readouterr().out
    assert "MDT caseload:" in out and "rule 'top 5% cost per practice'" in out


# ----------------------------------------------------------------- injected faults


def test_concurrent_run_is_refused_with_exit_75(population, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    path = _toml(_config(population, out), tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    with output_lock(out):
        with pytest.raises(JobLockedError):
            _run(population, out)
        assert main(["stratify", path]) == 75
    assert "another run holds the lock" in capsys.readouterr().err
    assert not (out / "runs").exists()
    assert main(["stratify", path]) == 0  # the lock is released


def _intact(res):
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["files"]  # an empty manifest would pass the loop below
    for rel, info in m["files"].items():
        assert jobs._hash_path(res.run_dir / rel) == info["sha256"]


def test_killed_mid_write_leaves_previous_run_current_and_intact(population, tmp_path,
                                                                 monkeypatch):
    out = tmp_path / "out"
    first = _run(population, out)
    real = jobs._write_bytes  # every list file is written through it
    calls = []

    def dying_writer(data, target, **kw):
        calls.append(target)
        if len(calls) == 2:
            # half a file, then the process "dies"
            target.parent.mkdir(parents=True, exist_ok=True)
            (target.parent / f".{target.name}.partial.tmp").write_text("pseudo_id\nab")
            raise KeyboardInterrupt("killed")
        return real(data, target, **kw)

    monkeypatch.setattr(jobs, "_write_bytes", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        _run(population, out, key=KEY_A, output={"per_practice": True})
    assert len(calls) == 2
    assert os.readlink(out / "current") == os.path.join("runs", first.run_id)
    assert sorted(p.name for p in (out / "runs").iterdir()) == [first.run_id]
    _intact(first)


def test_leftovers_of_a_sigkilled_run_are_cleaned_by_the_next_run(population, tmp_path):
    out = tmp_path / "out"
    first = _run(population, out)
    leftover = out / "runs" / ".tmp-deadbeef-xyz" / "caseload"
    leftover.mkdir(parents=True)
    (leftover / "SYNPCN0001.csv").write_text("pseudo_id\n12")  # truncated
    second = _run(population, out, output={"per_practice": True})
    assert not (out / "runs" / ".tmp-deadbeef-xyz").exists()
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        [first.run_id, second.run_id])


def test_disk_full_is_exit_74_names_the_path_and_publishes_nothing(population, tmp_path,
                                                                   capsys, monkeypatch):
    out = tmp_path / "out"
    first = _run(population, out)

    def full(data, target, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(jobs, "_write_bytes", full)
    path = _toml(_config(population, out, output={"per_practice": True}),
                 tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    assert main(["stratify", path]) == 74
    err = capsys.readouterr().err
    assert "No space left on device" in err and "caseload" in err
    assert sorted(p.name for p in (out / "runs").iterdir()) == [first.run_id]
    assert os.readlink(out / "current") == os.path.join("runs", first.run_id)
    _intact(first)


def test_key_rotation_is_detected_by_fingerprint(population, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    first = _run(population, out, key=KEY_A)
    with pytest.raises(ConfigError, match="fingerprint differs") as exc:
        _run(population, out, key=KEY_B)
    assert KEY_B not in str(exc.value) and KEY_A not in str(exc.value)
    path = _toml(_config(population, out), tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_B)
    assert main(["stratify", path]) == 78
    capsys.readouterr()
    rotated = _run(population, out, key=KEY_B,
                   pseudonymisation={"allow_key_rotation": True})
    assert rotated.manifest["key_rotated"] is True
    assert rotated.manifest["key_fingerprint"] != first.manifest["key_fingerprint"]
    cl_a, cl_b = read_caseload(first.run_dir), read_caseload(rotated.run_dir)
    assert len(cl_a) == len(cl_b) and not set(cl_a["pseudo_id"]) & set(cl_b["pseudo_id"])
    assert (cl_b["status"] == "unknown (key rotated)").all()


def _bad_population(population, tmp_path, fraction=0.3):
    reg = pd.read_parquet(population / "register.parquet")
    n = int(fraction * len(reg))
    bad = reg["nhs_number"].to_numpy(dtype=object).copy()
    bad[1:n + 1] = "1234567890"  # invalid check digit; the sentinel (row 0) stays
    reg["nhs_number"] = bad
    root = tmp_path / "badpop"
    root.mkdir()
    reg.to_parquet(root / "register.parquet")
    for name in ("events", "activity"):
        os.symlink(population / f"{name}.parquet", root / f"{name}.parquet")
    return root


def test_bad_data_beyond_threshold_is_exit_65_with_report_and_nothing_published(
        population, tmp_path, capsys, monkeypatch):
    bad = _bad_population(population, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(DataQualityError) as exc:
        _run(bad, out)
    report = json.loads(exc.value.report_path.read_text())
    assert report["status"] == "failed: data quality"
    assert report["problems"][0]["rule"] == "valid_unique_nhs_number"
    assert report["problems"][0]["count"] == 900
    assert not (out / "runs").exists() and not (out / "current").exists()
    path = _toml(_config(bad, out), tmp_path / "job.toml")
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    assert main(["stratify", path]) == 65
    assert "nothing published" in capsys.readouterr().err


def test_schema_error_in_input_is_exit_65(population, tmp_path, monkeypatch):
    reg = pd.read_parquet(population / "register.parquet")
    reg.loc[5, "age"] = 300
    root = tmp_path / "p"
    root.mkdir()
    reg.to_parquet(root / "register.parquet")
    for name in ("events", "activity"):
        os.symlink(population / f"{name}.parquet", root / f"{name}.parquet")
    with pytest.raises(DataQualityError, match="age_range"):
        _run(root, tmp_path / "out")


# ----------------------------------------------------------------- no identifiers anywhere


def test_sentinel_identifiers_never_appear_in_logs_errors_or_outputs(
        population, tmp_path, caplog, capsys, monkeypatch):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    monkeypatch.setenv("PH_TEST_KEY", KEY_A)
    path = _toml(_config(population, out, output={"per_practice": True,
                                                 "include_columns": ["age"]}),
                 tmp_path / "job.toml")
    assert main(["-v", "stratify", path]) == 0
    res = _run(population, out)
    # the sentinel patient is on the list (by pseudo id only)
    from pophealth.jobs.pseudonymise import pseudonymise

    pid = pseudonymise([SENTINEL_NHS], bytes.fromhex(KEY_A))[0]
    assert pid in set(read_caseload(res.run_dir)["pseudo_id"])
    texts = [caplog.text, capsys.readouterr().err]
    texts += [b.decode("utf-8", "replace") for b in _tree(out / "runs").values()]
    # error paths: bad data, rotated key, lock
    bad = _bad_population(population, tmp_path)
    for action in (lambda: _run(bad, tmp_path / "o2"), lambda: _run(population, out, KEY_B)):
        with pytest.raises(Exception) as exc:
            action()
        texts.append(str(exc.value))
    assert main(["stratify", _toml(_config(bad, tmp_path / "o3"),
                                   tmp_path / "bad.toml")]) == 65
    texts.append(capsys.readouterr().err)
    texts += [p.read_text() for p in (tmp_path / "o2" / "reports").glob("*.json")]
    texts += [p.read_text() for p in (tmp_path / "o3" / "reports").glob("*.json")]
    texts.append(caplog.text)
    blob = "\n".join(texts)
    assert len(blob) > 10_000  # the check looked at real content
    assert SENTINEL_NHS not in blob
    assert "999 000 0018" not in blob
    assert str(SENTINEL_ID) not in blob
    assert KEY_A not in blob


def test_demo_job_runs_end_to_end(tmp_path):
    res = jobs.demo_job(tmp_path, n_patients=1_500, random_state=2)
    cl = read_caseload(res.run_dir)
    assert len(cl) > 0 and cl["risk"].notna().all()
    assert np.isin(cl["tier"], ["very high", "high", "moderate", "low"]).all()
    assert (tmp_path / "job.toml").is_file()


@pytest.mark.slow
def test_demo_job_top_risk_is_plausible(tmp_path):
    """Issue 12 item 7: the demo's top 12-month emergency-admission risk was 0.9996 (a
    logistic model linear in raw prior-admission counts). The generator's true probability
    tops out at 0.75 (soft cap); the demo now fits the default calibrated gradient boosting,
    whose leaves hold observed rates, so its top predictions stay below 0.95."""
    res = jobs.demo_job(tmp_path, n_patients=20_000, random_state=0)
    cl = read_caseload(res.run_dir)
    assert cl["risk"].max() < 0.95
    assert cl["risk"].max() > 0.5  # the list still holds genuinely high-risk people
