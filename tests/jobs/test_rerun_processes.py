"""Reruns in separate processes are byte-identical (issue 16 item 4).

The same job runs as two real ``pophealth stratify`` processes with different
``PYTHONHASHSEED`` (so set and dict-of-str iteration orders differ) and different ``TZ``
(UTC and America/New_York), into two output directories. The run ids and every output
file's bytes must be identical. Nothing is excluded from the comparison except the
manifest's ``config.output.dir`` (the two output paths, which differ by construction).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from leak_sentinels import KEY_ENV, KEY_HEX, job_config, sentinel_population, write_toml

import pophealth

SRC = str(Path(pophealth.__file__).resolve().parents[1])


def _tree(root: Path) -> dict:
    """Relative path -> bytes of every file under ``root`` (``.lock`` excluded: it is an
    empty lock file, not output)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    reg, ev, act, _ = sentinel_population(n=400, random_state=8)
    # several PCNs and practices, so file order and dict order matter
    reg["pcn"] = [f"SENTPCN{i % 5:02d}" for i in range(len(reg))]
    reg.loc[reg.index[::7], "pcn"] = None  # the unknown-pcn list too
    root = tmp_path_factory.mktemp("inputs")
    paths = {}
    for name, frame in (("register", reg), ("events", ev), ("activity", act)):
        paths[name] = root / f"{name}.parquet"
        frame.to_parquet(paths[name])
    return paths


def _stratify(toml: Path, hashseed: str, tz: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, KEY_ENV: KEY_HEX, "PYTHONHASHSEED": hashseed,
           "TZ": tz}
    return subprocess.run([sys.executable, "-m", "pophealth.cli", "stratify", str(toml)],
                          env=env, capture_output=True, text=True, timeout=600)


def test_reruns_in_processes_with_other_hash_seeds_and_zones_are_byte_identical(inputs,
                                                                               tmp_path):
    outs, procs = [], []
    for label, seed, tz in (("a", "1", "UTC"), ("b", "2", "America/New_York")):
        out = tmp_path / f"out-{label}"
        cfg = job_config(inputs, out)
        cfg["output"]["per_practice"] = True
        procs.append(_stratify(write_toml(cfg, tmp_path / f"{label}.toml"), seed, tz))
        outs.append(out)
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    # stdout names the run dir, which differs; everything else printed is identical
    lines = [p.stdout.replace(str(o), "<out>") for p, o in zip(procs, outs, strict=True)]
    assert lines[0] == lines[1]
    ta, tb = _tree(outs[0]), _tree(outs[1])
    assert sorted(ta) == sorted(tb)
    run_ids = {os.readlink(o / "current") for o in outs}
    assert len(run_ids) == 1  # the same run id
    run = run_ids.pop()
    names = [k for k in ta if k.startswith(run + "/")]
    assert len([k for k in names if "/caseload/" in k]) == 6  # 5 PCNs + unknown-pcn
    assert any("/practice/" in k for k in names)
    ma = json.loads(ta.pop(f"{run}/manifest.json"))
    mb = json.loads(tb.pop(f"{run}/manifest.json"))
    assert ma["config"]["output"].pop("dir") == str(outs[0])
    assert mb["config"]["output"].pop("dir") == str(outs[1])
    assert ma == mb
    different = sorted(k for k in ta if ta[k] != tb[k])
    assert different == []
    # the manifest's bytes differ only by the output dir text
    raw = [(o / run / "manifest.json").read_text().replace(json.dumps(str(o)), '"<out>"')
           for o in outs]
    assert raw[0] == raw[1]
