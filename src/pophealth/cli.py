"""The ``pophealth`` command line (argparse only; the work lives in library modules).

Exit codes follow BSD ``sysexits.h``: 0 success, 64 usage (an argument that cannot be
parsed: unknown option or command, missing argument, a number or date in the wrong form
- dates are ``YYYY-MM-DD`` only), 65 bad data, 66 missing input, 70 internal error,
73 cannot create output (including a completed run that fails verification), 74 I/O
error (e.g. disk full), 75 temporary failure (another run holds the lock), 78 bad
configuration (including argument values out of range). Every error prints one line on
stderr, never a traceback and never data values; an unexpected internal error names
only its type and where it was raised. A hint to fix an error names the command-line flag
(``--overwrite``), not the library's keyword argument.

Every option has help text and shows its default (``pophealth COMMAND --help``);
``-v``/``--verbose`` is accepted before or after the command. Only argparse and the
version are imported at start-up, so ``pophealth --version`` is quick; each command
imports the library parts it needs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from pophealth._version import __version__

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


class _Formatter(argparse.HelpFormatter):
    """Help that shows every option's default, unless its help text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and not action.required and "default" not in text
                and action.default is not argparse.SUPPRESS):
            default = action.default
            shown = "off" if default is False else "%(default)s"
            text += f" (default: {shown})"
        return text


def _iso_date(text: str) -> str:
    """argparse type: a ``YYYY-MM-DD`` date, returned as that text."""
    from pophealth.contracts.exceptions import ConfigError
    from pophealth.jobs.config import parse_iso_date

    try:
        return str(parse_iso_date(text, "date").date())
    except ConfigError:
        raise argparse.ArgumentTypeError("not a date written YYYY-MM-DD") from None


def _verbose(parser: argparse.ArgumentParser) -> None:
    """``-v`` on the main parser and on every command, so it works before or after it."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress to stderr (default: off)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pophealth",
        description="Population health management for NHS Local Care Partnerships.",
        formatter_class=_Formatter,
    )
    p.add_argument("--version", action="version", version=f"pophealth {__version__}")
    _verbose(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        _verbose(c)
        return c

    s = command("synth", "write a synthetic population as partitioned Parquet")
    s.add_argument("out", type=Path, help="output directory (created)")
    s.add_argument("--patients", type=int, default=100_000, help="number of patients")
    s.add_argument("--seed", type=int, default=0, help="random_state of the generator")
    s.add_argument("--index-date", type=_iso_date, default="2025-04-01",
                   help="index date of the population, YYYY-MM-DD")
    s.add_argument("--batch-size", type=int, default=250_000,
                   help="patients generated and written per batch")
    s.add_argument("--no-progress", action="store_true",
                   help="never show a progress bar (default: shown on a terminal)")

    d = command("demo", "synthesise a population and run the whole pipeline")
    d.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a new temporary directory)")
    d.add_argument("--patients", type=int, default=50_000, help="number of patients")
    d.add_argument("--seed", type=int, default=0, help="random_state of every step")
    d.add_argument("--index-date", type=_iso_date, default="2025-04-01",
                   help="index date, YYYY-MM-DD")

    sc = command("score", "score a partitioned population on disk (out of core)")
    sc.add_argument("population", type=Path, help="directory with register/ and events/")
    sc.add_argument("out", type=Path, help="output directory for per-batch Parquet files")
    sc.add_argument("--index-date", type=_iso_date, required=True,
                    help="index date, YYYY-MM-DD (required; no default)")
    sc.add_argument("--batch-patients", type=int, default=None,
                    help="patients per batch (default: one batch per partition bucket)")
    sc.add_argument("--codelist", action="append", default=[], metavar="INDEX=LIST",
                    help="code list per index, e.g. efi=efi_snomed_synthetic (repeatable; "
                    "INDEX=none skips an index; default: each index's shipped list)")
    sc.add_argument("--overwrite", action="store_true",
                    help="replace an existing output directory")
    sc.add_argument("--no-progress", action="store_true",
                    help="never show a progress bar (default: shown on a terminal)")

    st = command("stratify", "run a scheduled stratification job (TOML config) and publish "
                 "per-PCN MDT caseload lists")
    st.add_argument("config", type=Path, help="job config, e.g. examples/job.toml")
    st.add_argument("--no-progress", action="store_true",
                    help="never show the stage progress bar (default: shown on a terminal)")

    rp = command("report", "write the board report (one self-contained HTML file, aggregate "
                 "figures only) for a job config")
    rp.add_argument("config", type=Path, help="job config, e.g. examples/job.toml")
    rp.add_argument("out", type=Path, help="the HTML file to write")
    rp.add_argument("--xlsx", action="store_true",
                    help="also write the report's tables and notes as OUT with .xlsx")

    command("codelists", "list the shipped code lists")
    return p


def _job_lines(result) -> list[str]:
    """The job summary: caseload size, changes since the previous run, per-rule counts.

    Per-rule counts are by the *first* rule (in config order) that selected a patient, so
    they add up to the caseload; a patient also selected by later rules is counted once.
    """
    counts = result.manifest["counts"]
    lines = [f"  MDT caseload: {counts['caseload_rows']:,} patient(s) in "
             f"{len(counts['by_pcn'])} PCN list(s); run {result.run_id}"
             + (" (identical to the existing run)" if result.reused else "")]
    ch = result.changes or {}
    if ch.get("compared_with") is None:
        lines.append(f"  first run: {counts['caseload_rows']:,} new")
    elif ch.get("new") is None:
        lines.append(f"  since run {ch['compared_with']}: not comparable (key rotated)")
    else:
        lines.append(f"  since run {ch['compared_with']}: {ch['new']:,} new, "
                     f"{ch['continuing']:,} continuing, {ch['left']:,} left")
    by_rule = counts["by_rule"]
    any_rule = counts.get("by_rule_any", {})
    # the manifest's keys are sorted; list the rules in the config's order
    order = [r.get("name") for r in result.manifest.get("config", {}).get("rules", [])
             if isinstance(r, dict)]
    names = [r for r in order if r in by_rule] + [r for r in by_rule if r not in order]
    lines.append("  selected by (first rule that selected; they add up to the caseload):")
    for rule in names:
        n = by_rule[rule]
        also = any_rule.get(rule, n)
        lines.append(f"    rule '{rule}': {n:,}"
                     + (f" (selected {also:,} in all, overlaps included)" if also != n else ""))
    for note in result.manifest.get("data_quality_notes", []):
        lines.append(f"  note: {note}")
    lines.append(f"  caseload outputs: {result.run_dir}")
    if getattr(result, "report", None) is not None:
        lines.append(f"  board report: {result.report}")
    return lines


def _say(line: str) -> None:
    """Print an error as exactly one line on stderr."""
    print(" ".join(line.split()), file=sys.stderr)


def _check_counts(args) -> None:
    """Range checks of the numeric options (ConfigError: exit 78)."""
    from pophealth.contracts.exceptions import ConfigError

    if getattr(args, "seed", 0) < 0:
        raise ConfigError("--seed must be 0 or more")
    for name in ("batch_size", "batch_patients"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")


def _progress(args) -> bool | None:
    """``--no-progress`` -> False; otherwise None (a bar only on a terminal)."""
    return False if args.no_progress else None


def _score(args) -> int:
    from pophealth.contracts.exceptions import ConfigError
    from pophealth.engines.streaming import score_dataset

    _check_counts(args)
    lists = {}
    for item in args.codelist:
        key, sep, value = item.partition("=")
        if not sep or key not in {"charlson", "elixhauser", "hfrs", "efi", "cms"}:
            raise ConfigError(f"--codelist expects INDEX=LIST with a known index, got '{key}'")
        lists[key] = None if value.lower() == "none" else value
    # each data-quality note is printed once, below, not also as a Python warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = score_dataset(args.population, args.out, index_date=args.index_date,
                                codelists=lists, batch_patients=args.batch_patients,
                                progress=_progress(args), overwrite=args.overwrite)
    notes = list(summary["notes"])
    for w in caught:  # any other warning is passed on unchanged
        if str(w.message).removeprefix("score_dataset: ") not in notes:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    print(f"scored {summary['patients']} patients in {summary['batches']} batch(es) "
          f"-> {args.out}")
    for note in notes:
        print(f"  note: {note}")
    return EX_OK


def _run(args) -> int:
    from pophealth.contracts.exceptions import ConfigError

    if args.command == "synth":
        from pophealth.synthetic import write_population

        if args.patients < 1:
            raise ConfigError("--patients must be at least 1")
        _check_counts(args)
        summary = write_population(
            args.out, args.patients, random_state=args.seed, index_date=args.index_date,
            batch_size=args.batch_size, progress=_progress(args),
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

        result = run_job(JobConfig.from_toml(args.config), progress=_progress(args))
        print(f"pophealth stratify: {result.manifest['name']} at index date "
              f"{result.manifest['index_date']}")
        print("\n".join(_job_lines(result)))
        return EX_OK
    if args.command == "report":
        from pophealth.jobs import JobConfig
        from pophealth.jobs.report import report_from_config

        paths = report_from_config(JobConfig.from_toml(args.config), args.out, xlsx=args.xlsx)
        print("pophealth report: wrote " + ", ".join(str(p) for p in paths))
        return EX_OK
    if args.command == "score":
        return _score(args)
    if args.command == "codelists":
        from pophealth.core.codelists import list_codelists

        print("\n".join(list_codelists()))
        return EX_OK
    _parser().print_help()
    return EX_USAGE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pophealth`` console script; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        _say(f"pophealth: usage error: {exc}")
        return EX_USAGE
    # imported after parsing: --help and --version need none of the library
    from pophealth.contracts.exceptions import (
        CodelistError,
        ConfigError,
        PopHealthError,
        SchemaError,
    )
    from pophealth.jobs import JobLockedError, RunStoreError

    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False)
                        else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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
        _say(f"pophealth: bad configuration: {_flag_hint(exc, args)}")
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


def _flag_hint(exc, args) -> str:
    """The error's message, its fix named as this command's flag when it has one.

    A library :class:`~pophealth.contracts.exceptions.ConfigError` whose ``parameter``
    is an option of the command (``overwrite`` -> ``--overwrite``) says "use --overwrite"
    rather than the library's "pass overwrite=True".
    """
    parameter = getattr(exc, "parameter", None)
    if parameter is None or not hasattr(args, parameter):
        return str(exc)
    flag = "--" + parameter.replace("_", "-")
    value = getattr(exc, "value", True)
    use = flag if value is True else f"{flag} {value}"
    return f"{exc.reason} (use {use})"


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
