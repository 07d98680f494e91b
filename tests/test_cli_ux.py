"""The command line without surprises (issue 15, item 5): help and defaults for every
option, ``-v`` after the command, notes printed once, hints that name the flag, per-rule
counts that add up, honest new / continuing / left on a rerun, a stage bar on stratify."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pophealth
from pophealth.cli import _parser, main
from pophealth.contracts.exceptions import ConfigError
from pophealth.jobs import JobConfig, run_job

SRC = str(Path(pophealth.__file__).resolve().parents[1])
KEY_ENV, KEY = "PH_UX_KEY", "44" * 32
INDEX_DATE = "2025-04-01"
# ages of the 8 crafted patients (all alive and registered on the index date)
AGES = [90, 85, 80, 70, 66, 64, 40, 30]
COMMANDS = ["synth", "demo", "score", "stratify", "codelists"]


def _cli(*argv, env_extra=None):
    """Run ``python -m pophealth.cli`` in a fresh process (real stdout, stderr, warnings)."""
    env = {**os.environ, "PYTHONPATH": SRC, **(env_extra or {})}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "pophealth.cli", *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


# ------------------------------------------------------------------ help and defaults


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _block(help_text: str, option: str) -> str:
    """The lines of ``--help`` output that describe ``option`` (its line and continuations)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf"\s+(-\w, )?{re.escape(option)}\b", line))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("    ") or re.match(r"\s+-", line):
            break
        block.append(line)
    return " ".join(" ".join(block).split())


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_option_has_help_text_and_shows_its_default(command, capsys):
    argv = ([command] if command else []) + ["--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    parser = _parser() if command is None else _subparsers(_parser())[command]
    options = [a for a in parser._actions if a.option_strings
               and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]
    assert options, command  # every command has at least -v
    for action in options:
        block = _block(text, action.option_strings[-1])
        assert action.help, (command, action.option_strings)
        assert "default" in block, (command, block)


@pytest.mark.parametrize(("command", "option", "shown"), [
    ("synth", "--patients", "(default: 100000)"),
    ("synth", "--batch-size", "(default: 250000)"),
    ("synth", "--index-date", "(default: 2025-04-01)"),
    ("demo", "--patients", "(default: 50000)"),
    ("demo", "--seed", "(default: 0)"),
    ("score", "--overwrite", "(default: off)"),
    ("score", "--index-date", "required; no default"),
    ("stratify", "--no-progress", "default: shown on a terminal"),
    ("codelists", "--verbose", "(default: off)"),
])
def test_help_shows_the_actual_default(command, option, shown, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert shown in _block(capsys.readouterr().out, option)


# ------------------------------------------------------------------ -v anywhere


@pytest.mark.parametrize("argv", [["-v", "codelists"], ["codelists", "-v"],
                                  ["codelists", "--verbose"], ["-v", "codelists", "-v"]])
def test_verbose_is_accepted_before_or_after_the_command(argv):
    assert _parser().parse_args(argv).verbose is True


def test_no_verbose_flag_means_not_verbose():
    assert getattr(_parser().parse_args(["codelists"]), "verbose", False) is False


# ------------------------------------------------------------------ a crafted job


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """8 patients with hand-set ages; events and activity from a synthetic population."""
    from pophealth.synthetic import make_population

    pop = make_population(8, random_state=0, index_date=INDEX_DATE)
    reg = pop.register.copy()
    reg["age"] = AGES
    reg["date_of_birth"] = pd.Timestamp(INDEX_DATE) - pd.to_timedelta(
        np.array(AGES) * 365.25 + 100, unit="D")
    reg["date_of_death"] = pd.NaT
    reg["registered_from"] = pd.Timestamp("2000-01-01")
    root = tmp_path_factory.mktemp("ux")
    reg.to_parquet(root / "register.parquet")
    pop.events.to_parquet(root / "events.parquet")
    pop.activity.to_parquet(root / "activity.parquet")
    return root


def _toml(inputs: Path, out: Path, second_rule_age: int, name: str = "job") -> Path:
    path = inputs / f"{name}-{second_rule_age}.toml"
    path.write_text(f"""
name = "ux"
index_date = "{INDEX_DATE}"
[inputs]
register = "{inputs}/register.parquet"
events = "{inputs}/events.parquet"
activity = "{inputs}/activity.parquet"
[codelists]
efi = "efi_snomed_synthetic"
cms = "cms_snomed_synthetic"
[[rules]]
name = "aged 80+"
where = [["age", ">=", 80]]
[[rules]]
name = "aged {second_rule_age}+"
where = [["age", ">=", {second_rule_age}]]
[output]
dir = "{out}"
rank_by = "age"
[pseudonymisation]
key_env = "{KEY_ENV}"
""", encoding="utf-8")
    return path


def _summary(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_stratify_rule_counts_add_up_and_reruns_report_honest_changes(inputs, tmp_path,
                                                                      capsys, monkeypatch):
    """By hand: ages 90 85 80 70 66 64 40 30. 'aged 80+' selects 3 (90, 85, 80);
    'aged 65+' selects 5 (those 3 again, 70, 66), so the caseload is 5 and the first-rule
    counts are 3 + 2 = 5 (the old summary said 3 and 5, adding to 8)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    out = tmp_path / "out"
    job65, job70 = _toml(inputs, out, 65), _toml(inputs, out, 70)

    assert main(["stratify", str(job65)]) == 0
    lines = _summary(capsys)
    assert "  MDT caseload: 5 patient(s) in 1 PCN list(s); run " in lines[1]
    assert lines[2] == "  first run: 5 new"
    assert "    rule 'aged 80+': 3" in lines
    assert "    rule 'aged 65+': 2 (selected 5 in all, overlaps included)" in lines
    m = json.loads((out / "current" / "manifest.json").read_text())
    assert m["counts"]["by_rule"] == {"aged 80+": 3, "aged 65+": 2}
    assert sum(m["counts"]["by_rule"].values()) == m["counts"]["caseload_rows"] == 5
    assert m["counts"]["by_rule_any"] == {"aged 80+": 3, "aged 65+": 5}
    assert (m["counts"]["new"], m["counts"]["continuing"], m["counts"]["left"]) == (5, 0, 0)
    run65 = m["run_id"]

    # an identical rerun: the same 5 patients, nobody new, nobody left
    assert main(["stratify", str(job65)]) == 0
    lines = _summary(capsys)
    assert lines[1].endswith("(identical to the existing run)")
    assert lines[2] == f"  since run {run65}: 0 new, 5 continuing, 0 left"

    # a stricter second rule: 90 85 80 70 stay, 66 leaves
    assert main(["stratify", str(job70)]) == 0
    lines = _summary(capsys)
    assert lines[2] == f"  since run {run65}: 0 new, 4 continuing, 1 left"
    assert "    rule 'aged 80+': 3" in lines
    assert "    rule 'aged 70+': 1 (selected 4 in all, overlaps included)" in lines
    run70 = json.loads((out / "current" / "manifest.json").read_text())["run_id"]

    # back to the first config: its run is reused, and compared with run70, not its own past
    assert main(["stratify", str(job65)]) == 0
    lines = _summary(capsys)
    assert lines[1].endswith("(identical to the existing run)")
    assert lines[2] == f"  since run {run70}: 1 new, 4 continuing, 0 left"


def test_stratify_prints_each_data_quality_note_once(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    assert main(["stratify", str(_toml(inputs, tmp_path / "out", 65)), "--no-progress"]) == 0
    captured = capsys.readouterr()
    # by hand: 5 of the 8 are under 75 (70, 66, 64, 40, 30)
    assert (captured.out + captured.err).count("5 of 8 patient(s) are under 75") == 1


def test_stratify_stage_bar(inputs, tmp_path, capsys):
    cfg = JobConfig.from_toml(_toml(inputs, tmp_path / "out", 65))
    run_job(cfg, environ={KEY_ENV: KEY}, progress=True)
    err = capsys.readouterr().err
    assert "stratify: publish" in err and "8/8" in err
    run_job(JobConfig.from_toml(_toml(inputs, tmp_path / "out2", 66)),
            environ={KEY_ENV: KEY}, progress=False)
    assert capsys.readouterr().err == ""


def test_verbose_after_the_command_logs_in_a_real_process(inputs, tmp_path):
    job = _toml(inputs, tmp_path / "out", 65)
    quiet = _cli("stratify", job, "--no-progress", env_extra={KEY_ENV: KEY})
    assert quiet.returncode == 0, quiet.stderr
    assert "INFO" not in quiet.stderr
    loud = _cli("stratify", job, "--no-progress", "-v", env_extra={KEY_ENV: KEY})
    assert loud.returncode == 0, loud.stderr
    assert "INFO pophealth.jobs.run: job: run" in loud.stderr


# ------------------------------------------------------------------ score: notes and hints


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    assert main(["synth", str(root / "pop"), "--patients", "300", "--no-progress"]) == 0
    return root / "pop"


def test_score_prints_each_note_once_in_a_real_process(population, tmp_path):
    proc = _cli("score", population, tmp_path / "out", "--index-date", INDEX_DATE,
                "--no-progress")
    assert proc.returncode == 0, proc.stderr
    both = proc.stdout + proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("  note: ")]
    assert notes  # the synthetic population has under-75s and uncoded events: notes exist
    for line in notes:
        text = line.removeprefix("  note: ")
        assert both.count(text) == 1, text
    assert "DataQualityWarning" not in proc.stderr


def test_rerun_hint_names_the_overwrite_flag(population, tmp_path, capsys):
    argv = ["score", str(population), str(tmp_path / "out"), "--index-date", INDEX_DATE,
            "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.rstrip().endswith("(use --overwrite)")
    assert "overwrite=True" not in err
    assert main([*argv, "--overwrite"]) == 0


def test_the_library_hint_still_names_the_keyword(population, tmp_path):
    from pophealth.engines.streaming import score_dataset

    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match=r"output exists: .* \(pass overwrite=True\)$") as exc:
        score_dataset(population, tmp_path / "out", index_date=INDEX_DATE, progress=False)
    assert exc.value.parameter == "overwrite"
