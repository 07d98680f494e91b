"""The ``pophealth`` command line (argparse only; the work lives in library modules).

Exit codes follow BSD ``sysexits.h``: 0 success, 64 usage (an argument that cannot be
parsed: unknown option or command, missing argument, a number or date in the wrong form
- dates are ``YYYY-MM-DD`` only), 65 bad data, 66 missing input, 70 internal error,
73 cannot create output (including a completed run that fails verification), 74 I/O
error (e.g. disk full), 75 temporary failure (another run holds the lock), 78 bad
configuration (including argument values out of range). Every error prints one line on
stderr, never a traceback and never data values; an unexpected internal error names
only its type and where it was raised.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pophealth._version import __version__
from pophealth.contracts.exceptions import CodelistError, ConfigError, PopHealthError, SchemaError

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_CANTCREAT, EX_CONFIG = (
    0, 64, 65, 66, 70, 73, 78)
EX_IOERR, EX_TEMPFAIL = 74, 75

logger = logging.getLogger("pophealth")


class _UsageError(Exception):
    """An argument could not be parsed (exit 64)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: raises instead of printing usage and exiting 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _iso_date(text: str) -> str:
    """argparse type: a ``YYYY-MM-DD`` date, returned as that text."""
    from pophealth.contracts.exceptions import ConfigError
    from pophealth.jobs.config import parse_iso_date

    try:
        return str(parse_iso_date(text, "date").date())
    except ConfigError:
        raise argparse.ArgumentTypeError("not a date written YYYY-MM-DD") from None


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pophealth",
        description="Population health management for NHS Local Care Partnerships.",
    )
    p.add_argument("--version", action="version", version=f"pophealth {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("synth", help="write a synthetic population as partitioned Parquet")
    s.add_argument("out", type=Path, help="output directory (created)")
    s.add_argument("--patients", type=int, default=100_000, help="number of patients")
    s.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    s.add_argument("--index-date", type=_iso_date, default="2025-04-01")
    s.add_argument("--batch-size", type=int, default=250_000)
    s.add_argument("--no-progress", action="store_true")

    d = sub.add_parser("demo", help="synthesise a population and run the whole pipeline")
    d.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a new temporary directory)")
    d.add_argument("--patients", type=int, default=50_000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--index-date", type=_iso_date, default="2025-04-01")

    sc = sub.add_parser("score", help="score a partitioned population on disk (out of core)")
    sc.add_argument("population", type=Path, help="directory with register/ and events/")
    sc.add_argument("out", type=Path, help="output directory for per-batch Parquet files")
    sc.add_argument("--index-date", type=_iso_date, required=True)
    sc.add_argument("--batch-patients", type=int, default=None)
    sc.add_argument("--codelist", action="append", default=[], metavar="INDEX=LIST",
                    help="code list per index, e.g. efi=efi_synthetic_pc (repeatable; "
                    "INDEX=none skips an index)")
    sc.add_argument("--overwrite", action="store_true")
    sc.add_argument("--no-progress", action="store_true")

    st = sub.add_parser("stratify", help="run a scheduled stratification job (TOML config) "
                        "and publish per-PCN MDT caseload lists")
    st.add_argument("config", type=Path, help="job config, e.g. examples/job.toml")

    sub.add_parser("codelists", help="list the shipped code lists")
    return p


def _job_lines(result) -> list[str]:
    counts = result.manifest["counts"]
    lines = [f"  MDT caseload: {counts['caseload_rows']:,} patient(s) in "
             f"{len(counts['by_pcn'])} PCN list(s); run {result.run_id}"
             + (" (identical to the existing run)" if result.reused else "")]
    if counts.get("new") is not None:
        lines.append(f"  since the previous run: {counts['new']} new, {counts['left']} left")
    for rule, n in counts["by_rule"].items():
        lines.append(f"  rule '{rule}': {n}")
    lines.append(f"  caseload outputs: {result.run_dir}")
    return lines


def _say(line: str) -> None:
    """Print an error as exactly one line on stderr."""
    print(" ".join(line.split()), file=sys.stderr)


def _check_counts(args) -> None:
    """Range checks of the numeric options (ConfigError: exit 78)."""
    if getattr(args, "seed", 0) < 0:
        raise ConfigError("--seed must be 0 or more")
    for name in ("batch_size", "batch_patients"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")


def _run(args) -> int:
    if args.command == "synth":
        from pophealth.synthetic import write_population

        if args.patients < 1:
            raise ConfigError("--patients must be at least 1")
        _check_counts(args)
        summary = write_population(
            args.out, args.patients, random_state=args.seed, index_date=args.index_date,
            batch_size=args.batch_size, progress=False if args.no_progress else None,
        )
        print(f"wrote {args.patients} synthetic patients to {args.out}")
        for key, value in summary.items():
            if isinstance(value, int):
                print(f"  {key}: {value}")
        return EX_OK
    if args.command == "demo":
        from pophealth.demo import format_summary, run_demo

        if args.patients < 100:
            raise ConfigError("--patients must be at least 100 for the demo")
        _check_counts(args)
        from pophealth.jobs import demo_job

        summary = run_demo(args.out, n_patients=args.patients, random_state=args.seed,
                           index_date=args.index_date)
        print(format_summary(summary))
        result = demo_job(summary["output_dir"], n_patients=args.patients,
                          random_state=args.seed, index_date=args.index_date)
        print("\n".join(_job_lines(result)))
        return EX_OK
    if args.command == "stratify":
        from pophealth.jobs import JobConfig, run_job

        result = run_job(JobConfig.from_toml(args.config))
        print(f"pophealth stratify: {result.manifest['name']} at index date "
              f"{result.manifest['index_date']}")
        print("\n".join(_job_lines(result)))
        return EX_OK
    if args.command == "score":
        from pophealth.engines.streaming import score_dataset

        _check_counts(args)
        lists = {}
        for item in args.codelist:
            key, sep, value = item.partition("=")
            if not sep or key not in {"charlson", "elixhauser", "hfrs", "efi", "cms"}:
                raise ConfigError(f"--codelist expects INDEX=LIST with a known index, got '{key}'")
            lists[key] = None if value.lower() == "none" else value
        summary = score_dataset(args.population, args.out, index_date=args.index_date,
                                codelists=lists, batch_patients=args.batch_patients,
                                progress=False if args.no_progress else None,
                                overwrite=args.overwrite)
        print(f"scored {summary['patients']} patients in {summary['batches']} batch(es) "
              f"-> {args.out}")
        for note in summary["notes"]:
            print(f"  note: {note}")
        return EX_OK
    if args.command == "codelists":
        from pophealth.core.codelists import list_codelists

        print("\n".join(list_codelists()))
        return EX_OK
    _parser().print_help()
    return EX_USAGE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pophealth`` console script; returns the exit code."""
    from pophealth.jobs import JobLockedError, RunStoreError

    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        _say(f"pophealth: usage error: {exc}")
        return EX_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except JobLockedError as exc:
        _say(f"pophealth: busy: {exc}")
        return EX_TEMPFAIL
    except RunStoreError as exc:
        _say(f"pophealth: cannot write output: {exc}")
        return EX_CANTCREAT
    except (SchemaError, CodelistError) as exc:
        _say(f"pophealth: bad data: {exc}")
        return EX_DATAERR
    except ConfigError as exc:
        _say(f"pophealth: bad configuration: {exc}")
        return EX_CONFIG
    except FileNotFoundError as exc:
        _say(f"pophealth: missing input: {exc.filename or exc}")
        return EX_NOINPUT
    except PermissionError as exc:
        _say(f"pophealth: cannot write output: {exc.filename or exc}")
        return EX_CANTCREAT
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"pophealth: I/O error ({exc.strerror or type(exc).__name__}){where}")
        return EX_IOERR
    except PopHealthError as exc:
        _say(f"pophealth: error: {exc}")
        return EX_SOFTWARE
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no values
        _say(f"pophealth: internal error: {_where(exc)}; please report it")
        return EX_SOFTWARE


def _where(exc: BaseException) -> str:
    """Type and innermost location of an exception, without its message (it may hold
    data values)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__name__
    code = tb.tb_frame.f_code
    return f"{type(exc).__name__} in {code.co_name} ({Path(code.co_filename).name}:{tb.tb_lineno})"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
