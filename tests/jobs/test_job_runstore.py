"""The run store: a completed run is immutable, `current` is never left dangling, and a
job SIGKILLed at any step leaves the previous run current and byte-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pophealth
from pophealth.cli import main
from pophealth.jobs import JobConfig, JobLockedError, RunStoreError, run_job
from pophealth.jobs.runstore import TEST_PAUSE_ENV, _clean_leftovers, _verify_run

KEY = "3c" * 32
SRC = str(Path(pophealth.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    from pophealth.synthetic import make_population

    pop = make_population(1_200, random_state=5, index_date="2025-04-01")
    root = tmp_path_factory.mktemp("pop")
    pop.register.to_parquet(root / "register.parquet")
    pop.events.to_parquet(root / "events.parquet")
    pop.activity.to_parquet(root / "activity.parquet")
    return root


def _config(pop: Path, out: Path, fraction: float) -> dict:
    return {
        "index_date": "2025-04-01",
        "inputs": {"register": str(pop / "register.parquet"),
                   "events": str(pop / "events.parquet"),
                   "activity": str(pop / "activity.parquet")},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top cost", "top_fraction": fraction, "by": "practice",
                   "rank_column": "prior_cost"}],
        "output": {"dir": str(out), "rank_by": "prior_cost", "per_practice": True},
        "pseudonymisation": {"key_env": "PH_RUNSTORE_KEY"},
    }


def _toml(cfg: dict, path: Path) -> Path:
    rule = cfg["rules"][0]
    path.write_text(
        f'index_date = "{cfg["index_date"]}"\n'
        "[inputs]\n" + "".join(f'{k} = "{v}"\n' for k, v in cfg["inputs"].items())
        + '[codelists]\nefi = "efi_snomed_synthetic"\n[output]\n'
        f'dir = "{cfg["output"]["dir"]}"\nrank_by = "prior_cost"\nper_practice = true\n'
        '[pseudonymisation]\nkey_env = "PH_RUNSTORE_KEY"\n'
        f'[[rules]]\nname = "{rule["name"]}"\ntop_fraction = {rule["top_fraction"]}\n'
        'by = "practice"\nrank_column = "prior_cost"\n')
    return path


def _run(pop, out, fraction):
    return run_job(JobConfig.from_dict(_config(pop, out, fraction)),
                   environ={"PH_RUNSTORE_KEY": KEY})


def _snapshot(run_dir: Path) -> dict:
    """Every file's bytes and every entry's mtime (ns) and inode under a run directory."""
    out = {}
    for p in sorted([run_dir, *run_dir.rglob("*")]):
        st = p.stat()
        out[p.relative_to(run_dir).as_posix()] = (
            p.read_bytes() if p.is_file() else None, st.st_mtime_ns, st.st_ino)
    return out


def _visible_runs(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "runs").iterdir() if not p.name.startswith("."))


def _assert_store_consistent(out: Path) -> None:
    """No visible partial run: every runs/<id> verifies; current names a verified run."""
    for name in _visible_runs(out):
        _verify_run(out / "runs" / name)
    target = os.readlink(out / "current")
    assert Path(target).parts[0] == "runs"
    assert (out / target / "manifest.json").is_file()


# ----------------------------------------------------------------- A -> B -> A


def test_rerunning_an_older_config_reuses_its_run_without_touching_a_byte(population,
                                                                          tmp_path):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    before = _snapshot(a.run_dir)
    assert len(before) > 5  # the run has real content
    time.sleep(0.02)  # any rewrite would now carry a later mtime
    b = _run(population, out, 0.10)
    assert b.run_id != a.run_id and b.manifest["previous_run_id"] == a.run_id
    b_before = _snapshot(b.run_dir)
    again = _run(population, out, 0.05)
    assert again.run_id == a.run_id and again.reused
    assert _snapshot(a.run_dir) == before  # bytes, mtimes and inodes unchanged
    assert _snapshot(b.run_dir) == b_before
    assert os.readlink(out / "current") == os.path.join("runs", a.run_id)
    assert again.manifest == json.loads(before["manifest.json"][0])
    assert _visible_runs(out) == sorted([a.run_id, b.run_id])
    # and back to B: again nothing rewritten
    _run(population, out, 0.10)
    assert _snapshot(b.run_dir) == b_before
    assert os.readlink(out / "current") == os.path.join("runs", b.run_id)


@pytest.mark.parametrize("damage", ["flip a byte", "add a file", "delete a file"])
def test_a_damaged_completed_run_is_refused_not_rewritten(population, tmp_path, capsys,
                                                          monkeypatch, damage):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    b = _run(population, out, 0.10)
    victim = sorted((a.run_dir / "caseload").iterdir())[0]
    if damage == "flip a byte":
        data = bytearray(victim.read_bytes())
        data[-2] ^= 1
        victim.write_bytes(bytes(data))
    elif damage == "add a file":
        (a.run_dir / "caseload" / "extra.csv").write_text("pseudo_id\n")
    else:
        victim.unlink()
    damaged = _snapshot(a.run_dir)
    with pytest.raises(RunStoreError, match=r"runs/\w+ does not match its manifest in 1 file"):
        _run(population, out, 0.05)
    monkeypatch.setenv("PH_RUNSTORE_KEY", KEY)
    path = _toml(_config(population, out, 0.05), tmp_path / "a.toml")
    assert main(["stratify", str(path)]) == 73
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never rewritten" in err
    assert _snapshot(a.run_dir) == damaged
    assert os.readlink(out / "current") == os.path.join("runs", b.run_id)


# ----------------------------------------------------------------- leftovers


def test_cleanup_removes_temporaries_only(population, tmp_path):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    before = _snapshot(a.run_dir)
    runs = out / "runs"
    (runs / ".tmp-0123456789abcdef-x" / "caseload").mkdir(parents=True)
    (runs / ".tmp-0123456789abcdef-x" / "caseload" / "P.csv").write_text("pseudo_id\n1")
    os.symlink("runs/" + a.run_id, out / ".current.0123456789abcdef")
    (out / ".current.not-a-link").mkdir()  # not ours to delete: kept
    assert _clean_leftovers(out) == 2
    assert sorted(p.name for p in runs.iterdir()) == [a.run_id]
    assert (out / ".current.not-a-link").is_dir()
    assert _snapshot(a.run_dir) == before


def test_cleanup_never_deletes_what_current_points_at(population, tmp_path):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    parked = out / "runs" / ".tmp-parked"
    os.rename(a.run_dir, parked)
    os.symlink("runs/.tmp-parked", out / ".current.x")
    os.replace(out / ".current.x", out / "current")
    assert _clean_leftovers(out) == 0
    assert (parked / "manifest.json").is_file()


def test_cleanup_restores_a_run_an_older_version_moved_aside_when_killed(population,
                                                                         tmp_path):
    # the old code replaced runs/<id> by moving it to runs/.tmp-old-<id>-*/run; a kill
    # between its two renames left `current` dangling and the next run deleted the run
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    before = {k: v[0] for k, v in _snapshot(a.run_dir).items()}
    trash = out / "runs" / f".tmp-old-{a.run_id}-abc"
    trash.mkdir()
    os.rename(a.run_dir, trash / "run")
    assert not (out / "current").exists()  # dangling
    assert _clean_leftovers(out) == 1
    assert {k: v[0] for k, v in _snapshot(a.run_dir).items()} == before
    assert (out / "current" / "manifest.json").is_file()
    again = _run(population, out, 0.05)
    assert again.reused and again.run_id == a.run_id


def test_a_current_link_pointing_outside_the_store_is_ignored(population, tmp_path):
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text('{"run_id": "x", "key_fingerprint": "y"}')
    out.mkdir()
    os.symlink(elsewhere, out / "current")
    res = _run(population, out, 0.05)  # no key-rotation refusal from a foreign manifest
    assert res.manifest["previous_run_id"] is None
    assert (elsewhere / "manifest.json").is_file()
    assert os.readlink(out / "current") == os.path.join("runs", res.run_id)


# ----------------------------------------------------------------- real SIGKILLs


def _start(toml: Path, pause: str | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "PH_RUNSTORE_KEY": KEY}
    env.pop(TEST_PAUSE_ENV, None)
    if pause:
        env[TEST_PAUSE_ENV] = pause
    return subprocess.Popen([sys.executable, "-m", "pophealth.cli", "stratify", str(toml)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_stopped(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid:
            assert os.WIFSTOPPED(status), proc.stderr.read().decode()
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the job never reached its pause point")


KILL_STEPS = ["locked", "writing:caseload", "writing:changes", "writing:practice",
              "writing:index.csv", "writing:manifest.json", "before_install", "installed",
              "link_created"]


@pytest.mark.parametrize("step", KILL_STEPS)
def test_sigkill_at_each_step_leaves_the_previous_run_current_and_intact(population, tmp_path,
                                                                         step):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    a_before = _snapshot(a.run_dir)
    toml = _toml(_config(population, out, 0.10), tmp_path / "b.toml")
    proc = _start(toml, step)
    try:
        _wait_stopped(proc)
        if step == "locked":  # the stopped job holds the lock
            with pytest.raises(JobLockedError):
                _run(population, out, 0.10)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert os.readlink(out / "current") == os.path.join("runs", a.run_id)
    assert _snapshot(a.run_dir) == a_before
    _assert_store_consistent(out)
    # killed mid-write: the file is complete in its temporary sibling, never renamed
    half = sorted(p.name for p in (out / "runs").glob(".tmp-*/**/.*.tmp"))
    assert len(half) == (1 if step.startswith("writing:") else 0), half
    # B is visible only once complete (after the rename)
    expect = 2 if step in ("installed", "link_created") else 1
    assert len(_visible_runs(out)) == expect
    # the next run finishes the job, cleans up and leaves A untouched
    b = _run(population, out, 0.10)
    assert b.reused == (expect == 2)
    assert os.readlink(out / "current") == os.path.join("runs", b.run_id)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([a.run_id, b.run_id])
    assert not list(out.glob(".current.*"))
    assert _snapshot(a.run_dir) == a_before
    _assert_store_consistent(out)


@pytest.mark.parametrize("delay", [0.8, 2.0, 3.5])
def test_sigkill_after_a_delay_never_leaves_a_partial_or_dangling_run(population, tmp_path,
                                                                      delay):
    out = tmp_path / "out"
    a = _run(population, out, 0.05)
    a_before = _snapshot(a.run_dir)
    proc = _start(_toml(_config(population, out, 0.10), tmp_path / "b.toml"), None)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _assert_store_consistent(out)
    assert os.readlink(out / "current") in {os.path.join("runs", r) for r in _visible_runs(out)}
    assert _snapshot(a.run_dir) == a_before
    b = _run(population, out, 0.10)
    assert os.readlink(out / "current") == os.path.join("runs", b.run_id)
    assert _snapshot(a.run_dir) == a_before
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]
