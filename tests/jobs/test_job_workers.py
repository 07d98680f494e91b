"""The job's batches scored on worker processes: same bytes, same errors, no orphans.

:mod:`pophealth.jobs.batchwork` scores patient batches on ``POPHEALTH_JOB_WORKERS``
processes. The workers finish in any order, so the job must take their results in batch
order: every output file must be byte-identical whatever the worker count, the error of a
bad input the one a serial run raises (the first failing batch's), and a SIGKILLed job
must leave neither a published run nor a worker process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pophealth
from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.jobs import JobConfig, run_job
from pophealth.jobs import inputs as job_inputs
from pophealth.jobs.batchwork import WORKERS_ENV, job_workers
from pophealth.jobs.runstore import TEST_PAUSE_ENV

KEY = "4d" * 32
IDX = "2025-04-01"
SRC = str(Path(pophealth.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def pop(tmp_path_factory):
    from pophealth.risk.features import make_features
    from pophealth.risk.model_io import save_model
    from pophealth.risk.models import RiskModel
    from pophealth.synthetic import make_population

    p = make_population(1_000, random_state=8, index_date=IDX)
    root = tmp_path_factory.mktemp("workerpop")
    reg = p.register.copy()
    reg.loc[reg.index[[5, 600]], "date_of_death"] = pd.Timestamp("2024-01-01")  # excluded
    reg.to_parquet(root / "register.parquet")
    p.events.to_parquet(root / "events.parquet")
    p.activity.to_parquet(root / "activity.parquet")
    p.outcomes.reset_index().to_parquet(root / "outcomes.parquet")
    # a saved model: the workers get it from the job's process (pickled or forked)
    train = make_population(600, random_state=9, index_date=IDX)
    with warnings.catch_warnings():  # the synthetic data's noted oddities
        warnings.simplefilter("ignore")
        scores = pophealth.score_patients(train.register, train.events, index_date=IDX,
                                          codelists={"efi": "efi_snomed_synthetic",
                                                     "cms": "cms_snomed_synthetic"},
                                          max_unrecognised=1.0, on_no_match="ignore")
    X = make_features(train.register, scores, train.activity, index_date=IDX)
    model = RiskModel(method="logistic", calibration=None).fit(
        X, train.outcomes["emergency_admission"].reindex(X.index))
    save_model(model, root / "model.zip", training_period=("2023-04-01", "2025-03-31"))
    return root, p


def _config(root: Path, out: Path, risk: str) -> JobConfig:
    risk_cfg = ({"model": str(root / "model.zip")} if risk == "model" else
                {"fit": {"method": "logistic", "outcome": "emergency_admission",
                         "random_state": 1, "max_rows": 700}})
    return JobConfig.from_dict({
        "index_date": IDX, "name": "workers",
        "inputs": {k: str(root / f"{k}.parquet")
                   for k in ("register", "events", "activity", "outcomes")},
        "codelists": {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"},
        "risk": {"tier_cuts": [0.01, 0.05, 0.2], **risk_cfg},
        "rules": [{"name": "top 5% risk per practice", "top_fraction": 0.05, "by": "practice"},
                  {"name": "frail", "where": [["segment", "==",
                                               "Frailty and dementia (long decline)"]]}],
        "output": {"dir": str(out), "rank_by": "risk", "per_practice": True},
        "pseudonymisation": {"key_env": "PH_WORKER_KEY"},
    })


def _files(run_dir: Path) -> dict:
    return {str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("risk", ["model", "fit"])
def test_every_output_file_is_byte_identical_with_1_2_or_3_workers(pop, tmp_path,
                                                                   monkeypatch, risk):
    root, _ = pop
    monkeypatch.setattr(job_inputs, "BATCH_PATIENTS", 83)  # 13 batches
    runs, files = {}, {}
    for workers in (1, 2, 3):
        monkeypatch.setenv(WORKERS_ENV, str(workers))
        out = tmp_path / "out"  # one output path (the manifest names it), moved aside after
        runs[workers] = run_job(_config(root, out, risk), environ={"PH_WORKER_KEY": KEY})
        assert not runs[workers].reused
        assert not list((out / "runs").glob(".tmp-*"))  # no spill left behind
        files[workers] = _files(runs[workers].run_dir)
        out.rename(tmp_path / f"w{workers}")
    assert len(files[1]) >= 8 and runs[1].manifest["counts"]["caseload_rows"] > 0
    assert runs[1].manifest["counts"]["excluded"]["died_on_or_before_index_date"] == 2
    for workers in (2, 3):
        assert runs[workers].run_id == runs[1].run_id
        assert files[workers] == files[1]  # every file, byte for byte


def _with_null_codes(root: Path, p, tmp_path: Path) -> Path:
    """Inputs whose events have null codes for patients in batches 3 and 8 (of 13)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("register", "activity", "outcomes", "model"):
        suffix = ".zip" if name == "model" else ".parquet"
        (bad / f"{name}{suffix}").symlink_to(root / f"{name}{suffix}")
    ids = np.sort(p.register["patient_id"].to_numpy())
    ev = p.events.copy()
    pid = ev["patient_id"].to_numpy()
    for batch in (3, 8):
        inside = np.isin(pid, ids[batch * 83:(batch + 1) * 83])
        ev.loc[ev.index[np.flatnonzero(inside)[:2]], "code"] = None
        assert inside.sum() >= 2
    ev.to_parquet(bad / "events.parquet")
    return bad


def test_a_bad_batch_raises_the_serial_runs_error_with_any_worker_count(pop, tmp_path,
                                                                         monkeypatch):
    root, p = pop
    bad = _with_null_codes(root, p, tmp_path)
    monkeypatch.setattr(job_inputs, "BATCH_PATIENTS", 83)
    errors = {}
    for workers in (1, 2):
        monkeypatch.setenv(WORKERS_ENV, str(workers))
        with pytest.raises(SchemaError) as info:
            run_job(_config(bad, tmp_path / f"o{workers}", "model"),
                    environ={"PH_WORKER_KEY": KEY})
        errors[workers] = info.value
        # the message names the report written under the output dir: same text otherwise
        errors[workers].text = str(info.value).replace(str(tmp_path / f"o{workers}"), "OUT")
        assert not (tmp_path / f"o{workers}" / "current").exists()  # nothing published
        assert not list((tmp_path / f"o{workers}" / "runs").glob(".tmp-*"))
    assert errors[2].text == errors[1].text
    assert type(errors[2]) is type(errors[1])
    assert errors[2].problems == errors[1].problems
    assert "patient batch 3 of 13" in errors[1].text  # the first bad batch, not batch 8
    assert "batch 8 " not in errors[1].text


def test_worker_count_from_the_environment():
    assert job_workers({WORKERS_ENV: "3"}) == 3
    assert job_workers({}) == (2 if (os.cpu_count() or 1) >= 2 else 1)
    for text in ("0", "-1", "two"):
        with pytest.raises(ConfigError, match=WORKERS_ENV):
            job_workers({WORKERS_ENV: text})


def _children(pid: int) -> set:
    kids = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        kids |= {int(k) for k in path.read_text().split()}
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (nobody reaped it yet)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and fork: Linux")
def test_a_sigkilled_job_leaves_no_worker_and_no_run(pop, tmp_path):
    root, _ = pop
    out = tmp_path / "out"
    toml = tmp_path / "job.toml"
    toml.write_text(
        f'index_date = "{IDX}"\n[inputs]\n'
        + "".join(f'{k} = "{root / (k + ".parquet")}"\n'
                  for k in ("register", "events", "activity"))
        + '[codelists]\nefi = "efi_snomed_synthetic"\ncms = "cms_snomed_synthetic"\n'
        f'[risk]\nmodel = "{root / "model.zip"}"\n'
        f'[output]\ndir = "{out}"\nrank_by = "risk"\n'
        '[pseudonymisation]\nkey_env = "PH_WORKER_KEY"\n'
        '[[rules]]\nname = "top"\ntop_fraction = 0.05\nby = "practice"\n')
    script = ("import sys\nfrom pophealth.jobs import inputs, JobConfig, run_job\n"
              "inputs.BATCH_PATIENTS = 83\n"
              "run_job(JobConfig.from_toml(sys.argv[1]))\n")
    env = {**os.environ, "PYTHONPATH": SRC, "PH_WORKER_KEY": KEY, WORKERS_ENV: "2",
           TEST_PAUSE_ENV: "batch_scored"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(toml)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while True:  # until the job stops itself after its first batch came back
            pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
            if pid:
                assert os.WIFSTOPPED(status), proc.stderr.read().decode()
                break
            assert time.monotonic() < deadline, "the job never reached its pause point"
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 120  # a bound on waiting, not a speed assertion
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)  # the workers ended with their job
    assert not (out / "current").exists()
    assert not [p for p in (out / "runs").iterdir() if not p.name.startswith(".tmp-")]


def _threads_of(task):
    """Stands in for score_batch_task in the workers: what the worker was given."""
    return task.k, task.threads, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_score_with_one_flag_core_thread(monkeypatch, workers):
    from pophealth.jobs import batchwork

    def task(k, threads=None):
        return batchwork.BatchTask(None, k, 3, None, None, None, {}, None, False, None, None,
                                   threads=threads)

    monkeypatch.setattr(batchwork, "score_batch_task", _threads_of)
    got = list(batchwork.run_batches([task(0), task(1), task(2, threads=3)], workers))
    assert [(k, t) for k, t, _ in got] == (
        [(0, 1), (1, 1), (2, 3)] if workers > 1  # a task's own setting is kept
        else [(0, None), (1, None), (2, 3)])  # in this process: the core's default
    assert all((pid != os.getpid()) == (workers > 1) for _, _, pid in got)


def _hugepages_of(task):
    """Stands in for score_batch_task: whether numpy madvises huge pages in the worker."""
    import numpy

    switch = numpy._core.multiarray._set_madvise_hugepage
    was = switch(False)  # returns the setting it replaces
    switch(was)
    return was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers: Linux")
def test_workers_do_not_madvise_huge_pages_and_the_job_process_is_untouched(monkeypatch):
    import numpy

    from pophealth.jobs import batchwork

    switch = numpy._core.multiarray._set_madvise_hugepage
    before = switch(True)  # this process: on for the test (numpy's default on Linux)
    try:
        monkeypatch.setattr(batchwork, "score_batch_task", _hugepages_of)
        tasks = [batchwork.BatchTask(None, k, 2, None, None, None, {}, None, False, None, None)
                 for k in range(2)]
        assert list(batchwork.run_batches(tasks, 2)) == [False, False]
        assert switch(True) is True  # the job's own process keeps its setting
    finally:
        switch(before)


def _killed_on_batch_1(task):
    """Stands in for score_batch_task: batch 1's worker is killed (as by the OOM killer)."""
    if task.k == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return task.k


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers: Linux")
def test_a_killed_worker_gives_one_line_saying_how_to_retry(monkeypatch):
    from pophealth.contracts.exceptions import PopHealthError
    from pophealth.jobs import batchwork

    monkeypatch.setattr(batchwork, "score_batch_task", _killed_on_batch_1)
    tasks = [batchwork.BatchTask(None, k, 3, None, None, None, {}, None, False, None, None)
             for k in range(3)]
    with pytest.raises(batchwork.WorkerLostError) as info:
        list(batchwork.run_batches(tasks, 2))
    msg = str(info.value)
    assert isinstance(info.value, PopHealthError)  # the CLI's one-line branch (exit 70)
    assert "\n" not in msg and info.value.__cause__ is None
    assert "of 3: a worker process ended without a result" in msg
    assert "nothing published" in msg and "POPHEALTH_JOB_WORKERS=1" in msg
