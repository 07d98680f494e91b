"""The pophealth command line: commands, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.dataset as ds
import pytest

from pophealth import __version__
from pophealth.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pophealth {__version__}"


def test_no_command_prints_help_and_exits_64(capsys):
    assert main([]) == 64
    assert "synth" in capsys.readouterr().out


def test_codelists_lists_shipped_lists(capsys):
    assert main(["codelists"]) == 0
    names = capsys.readouterr().out.split()
    assert "charlson_quan2005_icd10" in names and "hfrs_gilbert2018_icd10" in names


def test_demo_runs_the_pipeline_and_writes_outputs(tmp_path, capsys):
    assert main(["demo", "--patients", "3000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3,000 synthetic patients" in out
    assert "slope index of inequality" in out
    patients = pd.read_parquet(tmp_path / "patients.parquet")
    assert len(patients) == 3000
    assert {"charlson_quan2011", "elixhauser_van_walraven", "hfrs", "efi", "cms_general",
            "multimorbidity", "prior_cost"} <= set(patients.columns)
    assert "nhs_number" not in patients.columns
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["patients"] == 3000
    lsoa = pd.read_csv(tmp_path / "lsoa_emergency_admission_rates.csv")
    published = lsoa["numerator"].dropna()
    assert not published.between(1, 7).any() and (published % 5 == 0).all()


def test_demo_is_deterministic(tmp_path):
    for run in ("a", "b"):
        assert main(["demo", "--patients", "1000", "--out", str(tmp_path / run)]) == 0
    a = pd.read_parquet(tmp_path / "a" / "patients.parquet")
    b = pd.read_parquet(tmp_path / "b" / "patients.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_synth_writes_partitioned_parquet(tmp_path, capsys):
    out = tmp_path / "pop"
    assert main(["synth", str(out), "--patients", "2000", "--no-progress"]) == 0
    reg = ds.dataset(out / "register", partitioning="hive").to_table()
    assert reg.num_rows == 2000
    assert ds.dataset(out / "events", partitioning="hive").count_rows() > 0
    assert "wrote 2000 synthetic patients" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["demo", "--patients", "5"], 78, "bad configuration: --patients must be at least 100 for the demo"),
        (["synth", "x", "--patients", "0"], 78, "bad configuration: --patients must be at least 1"),
    ],
)
def test_user_errors_are_one_line_with_sysexits_code(argv, code, message, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err == f"pophealth: {message}"


def test_console_script_error_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "pophealth.cli", "demo", "--patients", "1"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_score_command_and_missing_input(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "pop"), "--patients", "1500", "--no-progress"]) == 0
    code = main(["score", str(tmp_path / "pop"), str(tmp_path / "out"), "--index-date",
                 "2025-04-01", "--codelist", "efi=efi_snomed_synthetic", "--no-progress"])
    assert code == 0
    assert "scored 1500 patients in 1 batch(es)" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "out")) == 1500
    assert main(["score", str(tmp_path / "missing"), str(tmp_path / "o2"),
                 "--index-date", "2025-04-01"]) == 66
    assert capsys.readouterr().err.strip().startswith("pophealth: missing input:")
    assert main(["score", str(tmp_path / "pop"), str(tmp_path / "o3"), "--index-date",
                 "2025-04-01", "--codelist", "frailty=x"]) == 78
