"""Every file of a published run is fsynced before the run is installed.

The lists are written without a per-file fsync and synced together
(:func:`pophealth.jobs.runstore._sync_files`) before the manifest; a run whose files were
never synced could be installed (renamed into place) and lost by a power cut.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pophealth.jobs import JobConfig, run_job

KEY = "5e" * 32


def _final_name(rel: Path) -> Path:
    """A file fsynced under its temporary sibling's name (``.<name>.<random>.tmp``)."""
    name = rel.name
    if name.startswith(".") and name.endswith(".tmp"):
        return rel.with_name(name[1:].rsplit(".", 2)[0])
    return rel


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd: Linux")
def test_every_file_and_directory_of_the_run_is_fsynced_before_install(tmp_path, monkeypatch):
    from pophealth.jobs import runstore
    from pophealth.synthetic import make_population

    pop = make_population(400, random_state=3, index_date="2025-04-01")
    for name in ("register", "events", "activity"):
        getattr(pop, name).to_parquet(tmp_path / f"{name}.parquet")
    config = JobConfig.from_dict({
        "index_date": "2025-04-01",
        "inputs": {k: str(tmp_path / f"{k}.parquet") for k in ("register", "events", "activity")},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top cost", "top_fraction": 0.2, "by": "practice",
                   "rank_column": "prior_cost"}],
        "output": {"dir": str(tmp_path / "out"), "rank_by": "prior_cost", "per_practice": True},
        "pseudonymisation": {"key_env": "PH_FSYNC_KEY"},
    })
    synced: list = []
    installed: list = []
    real_fsync, real_install = os.fsync, runstore._install_run

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def install(tmp, final):
        installed.append((Path(tmp), list(synced)))  # what was synced by then
        return real_install(tmp, final)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr("pophealth.jobs.run._install_run", install)
    res = run_job(config, environ={"PH_FSYNC_KEY": KEY})
    (tmp, before), = installed
    files = sorted(p.relative_to(res.run_dir) for p in res.run_dir.rglob("*") if p.is_file())
    dirs = sorted({f.parent for f in files})
    assert len(files) > 5 and Path("caseload") in dirs and Path("practice") in dirs
    done = {_final_name(Path(p).relative_to(tmp)) for p in before
            if Path(p) == tmp or Path(p).is_relative_to(tmp)}
    assert [f for f in files if f not in done] == []  # every file, the manifest too
    assert [d for d in dirs if d not in done] == []  # and the directories holding them
