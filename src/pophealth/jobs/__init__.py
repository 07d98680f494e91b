"""Jobs: the scheduled stratification job (``pophealth stratify job.toml``).

TOML config, inputs and data-quality checks, the run store (lock, atomic runs, manifest),
pseudonyms and caseload files. Stands on everything below it (core, the analyses,
engines); never imports :mod:`pophealth.cli` or :mod:`pophealth.demo`.

* :mod:`~pophealth.jobs.config` -- ``JobConfig`` (every problem found at load time).
* :mod:`~pophealth.jobs.probe` -- the zero-row dry run that checks columns and rules.
* :mod:`~pophealth.jobs.inputs` -- reading the inputs and building the patient table.
* :mod:`~pophealth.jobs.runstore` -- lock, atomic run directories, ``read_caseload``.
* :mod:`~pophealth.jobs.pseudonymise` -- HMAC-SHA256 pseudo ids, key fingerprint.
* :mod:`~pophealth.jobs.run` -- ``run_job`` and the caseload writer; ``demo_job``.
"""

from pophealth.jobs.batchwork import WorkerLostError
from pophealth.jobs.config import JobConfig
from pophealth.jobs.inputs import DataQualityError
from pophealth.jobs.pseudonymise import key_fingerprint, load_key, pseudonymise
from pophealth.jobs.run import JobResult, demo_job, run_job
from pophealth.jobs.runstore import JobLockedError, RunStoreError, output_lock, read_caseload

__all__ = [
    "DataQualityError",
    "JobConfig",
    "JobLockedError",
    "JobResult",
    "RunStoreError",
    "WorkerLostError",
    "demo_job",
    "key_fingerprint",
    "load_key",
    "output_lock",
    "pseudonymise",
    "read_caseload",
    "run_job",
]
