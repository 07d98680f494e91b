"""CPU of one job batch (read, validate, score, spill) in this process: the workers' unit.

Uses the population and config that ``benchmarks/bench_job.py`` left in ``--work``; scores
batch 0 once (warm-up: code lists, imports), then batch 1, timed (or cProfiled with
``--profile SORT``). Prints wall and CPU seconds and the 1-minute load average.
``--threads`` is the flag core's thread count; the default, 1, is what the job's worker
processes use (:func:`pophealth.jobs.batchwork.run_batches`); ``--threads 0`` leaves the
core's own default (2, as a one-worker job scores). ``--reps N`` times batch 1 N times and
also prints the smallest CPU (the least disturbed by other processes).

Usage::

    python benchmarks/bench_job_batch.py --work /tmp/bench_job [--profile cumulative]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--batch-patients", type=int, default=250_000)
    p.add_argument("--profile", default=None, help="cProfile sort key (e.g. cumulative)")
    p.add_argument("--threads", type=int, default=1,
                   help="flag-core threads (default 1, as in the job's workers; 0: core default)")
    p.add_argument("--reps", type=int, default=1)
    args = p.parse_args()

    import tempfile

    import numpy as np

    from pophealth.engines.streaming import id_batches
    from pophealth.jobs import JobConfig
    from pophealth.jobs.batchwork import BatchTask, score_batch_task
    from pophealth.jobs.inputs import _load_model, _register_ids

    cfg = JobConfig.from_toml(args.work / "job.toml")
    ids = np.sort(_register_ids(cfg, {})["patient_id"].to_numpy())
    bounds = list(id_batches(ids, args.batch_patients))
    model = _load_model(cfg.risk_model) if cfg.risk_model is not None else None
    lists = {k: (None if v.lower() == "none" else v) for k, v in cfg.codelists.items()}
    with tempfile.TemporaryDirectory() as spill:
        def task(k: int) -> BatchTask:
            _, reg, rows = bounds[k]
            return BatchTask(cfg, k, len(bounds), reg, rows, None, lists, model, False, None,
                             Path(spill), threads=args.threads or None)

        score_batch_task(task(0))  # warm-up
        cpus = []
        for _ in range(args.reps):
            t, c = time.perf_counter(), time.process_time()
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.runcall(score_batch_task, task(1))
                pstats.Stats(prof).sort_stats(args.profile).print_stats(40)
            else:
                score_batch_task(task(1))
            cpus.append(time.process_time() - c)
            print(f"batch of {args.batch_patients}: wall {time.perf_counter() - t:.2f} s, "
                  f"CPU {cpus[-1]:.2f} s, load {os.getloadavg()[0]:.2f}, "
                  f"threads {args.threads or 'default'}")
        if args.reps > 1:
            print(f"min CPU {min(cpus):.2f} s over {args.reps} reps")


if __name__ == "__main__":
    main()
