"""Every CLI user error is exactly one stderr line, no traceback, with its sysexits code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pophealth
from pophealth.cli import main

SRC = str(Path(pophealth.__file__).resolve().parents[1])

# (argv with {tmp} for the test's directory, expected exit code, fragment of the line)
CASES = [
    (["synth", "{tmp}/out", "--index-date", "2025-13-01"], 64, "--index-date: not a date"),
    (["synth", "{tmp}/out", "--index-date", "01/04/2025"], 64, "YYYY-MM-DD"),
    (["synth", "{tmp}/out", "--index-date", "2025-04-01T00:00"], 64, "YYYY-MM-DD"),
    (["demo", "--index-date", "20250401"], 64, "YYYY-MM-DD"),
    (["demo", "--index-date", "2025-02-30"], 64, "YYYY-MM-DD"),
    (["score", "{tmp}/pop", "{tmp}/out", "--index-date", "2025-02-29"], 64, "YYYY-MM-DD"),
    (["score", "{tmp}/pop", "{tmp}/out"], 64, "required: --index-date"),
    (["synth", "{tmp}/out", "--patients", "abc"], 64, "invalid int value"),
    (["synth"], 64, "required: out"),
    (["bogus"], 64, "invalid choice"),
    (["--nope"], 64, "unrecognized arguments"),
    (["synth", "{tmp}/out", "--seed", "-1"], 78, "--seed must be 0 or more"),
    (["synth", "{tmp}/out", "--batch-size", "0"], 78, "--batch-size must be at least 1"),
    (["score", "{tmp}/pop", "{tmp}/out", "--index-date", "2025-04-01", "--batch-patients", "0"],
     78, "--batch-patients must be at least 1"),
    (["score", "{tmp}/pop", "{tmp}/out", "--index-date", "2025-04-01", "--codelist", "x=y"],
     78, "--codelist expects INDEX=LIST"),
    (["score", "{tmp}/absent", "{tmp}/out", "--index-date", "2025-04-01"], 66, "missing input"),
    (["stratify", "{tmp}/absent.toml"], 78, "config file not found"),
    (["stratify", "{tmp}"], 78, "cannot read config file"),
    (["stratify", "{tmp}/notutf8.toml"], 78, "not UTF-8"),
    (["stratify", "{tmp}/broken.toml"], 78, "not valid TOML"),
]


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "pop").mkdir()
    (tmp_path / "notutf8.toml").write_bytes(b'name = "\xff\xfe"\n')
    (tmp_path / "broken.toml").write_text("index_date = \n[[\n")
    return tmp_path


def _argv(argv, tmp):
    return [a.replace("{tmp}", str(tmp)) for a in argv]


@pytest.mark.parametrize("argv, code, fragment", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_user_error_is_one_line_with_its_exit_code(workdir, capsys, argv, code, fragment):
    assert main(_argv(argv, workdir)) == code
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("pophealth: ")
    assert fragment in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (workdir / "out").exists()


@pytest.mark.parametrize("argv, code", [
    (["synth", "{tmp}/out", "--index-date", "2025-13-01"], 64),
    (["score", "{tmp}/pop", "{tmp}/out", "--index-date", "01/04/2025"], 64),
    (["stratify", "{tmp}/broken.toml"], 78),
])
def test_real_process_prints_one_line_and_exits_with_the_code(workdir, argv, code):
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-m", "pophealth.cli", *_argv(argv, workdir)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == code
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_an_unexpected_error_is_one_line_naming_its_type_never_its_message(monkeypatch,
                                                                          capsys):
    import pophealth.core.codelists as codelists

    def boom():
        raise ValueError("9990000018 is a sentinel identifier\nsecond line")

    monkeypatch.setattr(codelists, "list_codelists", boom)
    assert main(["codelists"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pophealth: internal error: ValueError in boom (test_cli_errors.py:")
    assert "9990000018" not in err and "Traceback" not in err


def test_a_multi_line_library_message_is_printed_on_one_line(monkeypatch, capsys):
    import pophealth.core.codelists as codelists
    from pophealth.contracts.exceptions import SchemaError

    def bad():
        raise SchemaError("register: rule one broken\nregister: rule two broken")

    monkeypatch.setattr(codelists, "list_codelists", bad)
    assert main(["codelists"]) == 65
    err = capsys.readouterr().err
    assert err == "pophealth: bad data: register: rule one broken register: rule two broken\n"


def test_a_valid_iso_date_is_accepted(tmp_path, capsys):
    out = tmp_path / "pop"
    assert main(["synth", str(out), "--patients", "200", "--index-date", "2024-02-29",
                 "--no-progress"]) == 0
    assert "wrote 200 synthetic patients" in capsys.readouterr().out
