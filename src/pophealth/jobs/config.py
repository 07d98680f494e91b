"""The stratification job's configuration: :class:`JobConfig`, read from TOML and validated.

Everything is checked when the config is loaded, before any data is read: unknown keys,
types, dates (``YYYY-MM-DD``), fractions in [0, 1], tier cuts, the risk method, code-list
names and files, segment rule sets, selection rules, ``rank_by`` and ``include_columns``
(the last few by a zero-row dry run, :mod:`pophealth.jobs.probe`). Every problem is a
one-line :class:`~pophealth.contracts.exceptions.ConfigError` (CLI exit 78); see
``examples/job.toml`` for every key. :func:`pophealth.jobs.run_job` runs a config.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pophealth.cohorts.caseload import SelectionRule
from pophealth.contracts.exceptions import ConfigError, PopHealthError
from pophealth.contracts.schema import naive_timestamp
from pophealth.jobs.columns import check_include_columns
from pophealth.jobs.pseudonymise import _looks_like_key, check_key_env

__all__ = ["JobConfig", "parse_iso_date"]

_SCHEMA: dict = {
    "": {"index_date": "date", "name": str},
    "inputs": {"register": str, "events": str, "activity": str, "outcomes": str},
    "codelists": None,  # index name -> code list name or "none"
    "risk": {"model": str, "fit": dict, "tier_cuts": list},
    "risk.fit": {"method": str, "calibration": str, "outcome": str, "random_state": int,
                 "max_rows": int},
    "segments": {"enabled": bool, "rules": str},
    "output": {"dir": str, "per_practice": bool, "format": str, "include_columns": list,
               "rank_by": str},
    "pseudonymisation": {"key_env": str, "id_column": str, "allow_key_rotation": bool},
    "report": {"title": str, "xlsx": bool},
    "quality": {"max_invalid_id_fraction": float, "max_unrecognised_code_fraction": float,
                "max_unknown_patient_activity_fraction": float},
}
_SECTIONS = {"inputs", "codelists", "risk", "segments", "rules", "output", "pseudonymisation",
             "quality", "report"}
_INDICES = {"charlson", "elixhauser", "hfrs", "efi", "cms"}
def _check_table(table: dict, section: str) -> None:
    spec = _SCHEMA[section]
    where = f"[{section}]" if section else "top level"
    for key, value in table.items():
        if section == "" and key in _SECTIONS:
            continue
        if key not in spec:
            allowed = sorted(spec) + (sorted(_SECTIONS) if section == "" else [])
            shown = "(not shown: it looks like key material)" if _looks_like_key(key) \
                else f"'{key}'"
            raise ConfigError(f"unknown key {shown} in {where} (allowed: {', '.join(allowed)})")
        kind = spec[key]
        if kind == "date":
            ok = isinstance(value, str) or (isinstance(value, dt.date)
                                            and not isinstance(value, dt.datetime))
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"key '{key}' in {where} has the wrong type "
                              f"(expected {getattr(kind, '__name__', kind)})")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FIT_METHODS = ("hgb", "logistic")
_CALIBRATIONS = ("sigmoid", "isotonic", "none")
_QUALITY_DEFAULTS = {"max_invalid_id_fraction": 0.01, "max_unrecognised_code_fraction": 0.2,
                     "max_unknown_patient_activity_fraction": 0.05}


def parse_iso_date(value, what: str = "index_date") -> pd.Timestamp:
    """A calendar date written ``YYYY-MM-DD`` (or a TOML date) as a midnight Timestamp.

    Anything else - other layouts such as ``01/04/2025``, impossible dates such as
    ``2025-13-01``, times or time zones - is a one-line :class:`ConfigError`.

    Examples
    --------
    >>> from pophealth.jobs.config import parse_iso_date
    >>> parse_iso_date("2025-04-01")
    Timestamp('2025-04-01 00:00:00')
    >>> parse_iso_date("01/04/2025")
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: index_date is not a date written YYYY-MM-DD
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return pd.Timestamp(value)
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return pd.Timestamp(dt.date.fromisoformat(value))
        except ValueError:
            pass
    raise ConfigError(f"{what} is not a date written YYYY-MM-DD")


def _fraction(value, what: str, *, low_open: bool = False, high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"{what} must be a number in {lo}0, 1{hi}")
    return value


def _check_include_columns(names) -> tuple:
    """``include_columns`` as a tuple of column names, checked against the caseload allow-list.

    The shape (a list of strings) is checked here; the allow-list itself
    (:func:`pophealth.jobs.columns.check_include_columns`) refuses identifiers, internal
    columns and repeats. That every name is a column of the patient table is checked by
    :func:`pophealth.jobs.probe.check_pipeline`.
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError("[output] include_columns must be a list of column names (strings)")
    return check_include_columns(names)


def _check_report(report: dict) -> dict:
    """``[report]``: the board report's options; its libraries must be installed."""
    from importlib.util import find_spec

    needs = [("matplotlib", "plot")] + ([("openpyxl", "xlsx")] if report.get("xlsx") else [])
    for module, extra in needs:
        if find_spec(module) is None:
            raise ConfigError(f"[report] needs {module} (pip install pophealth[{extra}])")
    return {"title": report.get("title", "Population health report"),
            "xlsx": bool(report.get("xlsx", False))}


def _check_tier_cuts(cuts) -> tuple:
    if (not isinstance(cuts, list) or len(cuts) != 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cuts)):
        raise ConfigError("[risk] tier_cuts needs three cumulative fractions (numbers), "
                          "e.g. [0.005, 0.05, 0.2]")
    out = tuple(float(c) for c in cuts)
    if not all(0 < c < 1 for c in out) or not out[0] < out[1] < out[2]:
        raise ConfigError("[risk] tier_cuts must be strictly increasing fractions in (0, 1)")
    return out


def _check_fit(fit: dict) -> dict:
    method = fit.get("method", "hgb")
    if method not in _FIT_METHODS:
        raise ConfigError(f"[risk.fit] method must be one of {', '.join(_FIT_METHODS)}")
    if fit.get("calibration", "sigmoid") not in _CALIBRATIONS:
        raise ConfigError(f"[risk.fit] calibration must be one of {', '.join(_CALIBRATIONS)}")
    for key in ("random_state", "max_rows"):
        if fit.get(key, 0) < 0:
            raise ConfigError(f"[risk.fit] {key} must be 0 or more")
    return dict(fit)


def _is_path(text: str, base: Path) -> bool:
    return "/" in text or "\\" in text or text.endswith(".csv") or (base / text).exists()


def _check_codelists(codelists: dict, base: Path) -> dict:
    """Index -> shipped code-list name, "none", or an existing CSV file (resolved)."""
    from pophealth.core.codelists import list_codelists, load_codelist

    shipped = set(list_codelists())
    out = {}
    for key, value in codelists.items():
        if key not in _INDICES or not isinstance(value, str):
            raise ConfigError(f"[codelists] key '{key}': expected one of "
                              f"{', '.join(sorted(_INDICES))} = \"<list>\" or \"none\"")
        if value.lower() == "none" or value in shipped:
            out[key] = value
            continue
        if not _is_path(value, base):
            raise ConfigError(f"[codelists] {key}: unknown code list '{value}' (see "
                              "`pophealth codelists`, or give the path of a CSV file)")
        path = base / value
        if not path.is_file():
            raise ConfigError(f"[codelists] {key}: code list file not found: {path}")
        try:
            load_codelist(path)
        except PopHealthError as exc:
            raise ConfigError(f"[codelists] {key}: {exc}") from None
        out[key] = str(path)
    return out


def _check_segment_rules(name: str, base: Path) -> str:
    from pophealth.segments.rules import load_rules

    source = str(base / name) if _is_path(name, base) else name
    try:
        load_rules(source)
    except (PopHealthError, OSError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(f"[segments] rules: {detail}") from None
    return source


def _check_rules(rules_raw) -> tuple:
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ConfigError("at least one [[rules]] table is needed")
    rules = []
    for i, r in enumerate(rules_raw, start=1):
        where = f"[[rules]] #{i}"
        if not isinstance(r, dict):
            raise ConfigError(f"{where} must be a table")
        if not isinstance(r.get("name"), str) or not r["name"].strip():
            raise ConfigError(f"{where} needs a name (a non-empty string)")
        where = f"[[rules]] '{r['name']}'"
        if "top_fraction" in r:
            _fraction(r["top_fraction"], f"{where} top_fraction", low_open=True)
        for key in ("rank_column", "by"):
            if key in r and not isinstance(r[key], str):
                raise ConfigError(f"{where} {key} must be a column name (a string)")
        conds = r.get("where", [])
        if not isinstance(conds, list):
            raise ConfigError(f"{where} where must be a list of [column, op, value]")
        for j, c in enumerate(conds, start=1):
            triple = (isinstance(c, list) and len(c) == 3) or (
                isinstance(c, dict) and set(c) == {"column", "op", "value"})
            column = (c[0] if isinstance(c, list) else c.get("column")) if triple else None
            if not triple or not isinstance(column, str):
                raise ConfigError(f"{where} condition {j} must be [column, op, value] (or a "
                                  "table with column, op and value)")
        try:
            rules.append(SelectionRule.from_dict(r))
        except (PopHealthError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if len({r.name for r in rules}) != len(rules):
        raise ConfigError("[[rules]] names must be unique")
    return tuple(rules)


@dataclass(frozen=True)
class JobConfig:
    """A validated stratification job. Build it with :meth:`from_toml` or :meth:`from_dict`.

    Relative input and output paths are resolved against ``base_dir`` (the TOML file's
    directory). See ``examples/job.toml`` for every key.

    Examples
    --------
    >>> from pophealth.jobs.config import JobConfig
    >>> cfg = JobConfig.from_dict({
    ...     "index_date": "2025-04-01",
    ...     "inputs": {"register": "r.parquet", "events": "e.parquet", "activity": "a.parquet"},
    ...     "codelists": {"efi": "efi_snomed_synthetic"},
    ...     "risk": {"model": "model.joblib"},
    ...     "rules": [{"name": "top 2% risk", "top_fraction": 0.02, "by": "practice"}],
    ...     "output": {"dir": "out"},
    ...     "pseudonymisation": {"key_env": "POPHEALTH_KEY"}}, base_dir="/data")
    >>> cfg.output_dir.as_posix(), len(cfg.config_hash)
    ('/data/out', 64)
    >>> JobConfig.from_dict({"index_date": "2025-04-01", "colour": "blue"})
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: unknown key 'colour' in top level (allowed: index_date, name, codelists, inputs, output, pseudonymisation, quality, report, risk, rules, segments)
    """

    index_date: pd.Timestamp
    inputs: dict
    output_dir: Path
    rules: tuple
    key_env: str
    raw: dict = field(repr=False)
    name: str = "caseload"
    codelists: dict = field(default_factory=dict)
    risk_model: Path | None = None
    risk_fit: dict | None = None
    tier_cuts: tuple = (0.005, 0.05, 0.2)
    segments: bool = True
    segment_rules: str = "bridges_to_health"
    per_practice: bool = False
    format: str = "csv"
    include_columns: tuple = ()
    rank_by: str = "risk"
    id_column: str = "nhs_number"
    allow_key_rotation: bool = False
    quality: dict = field(default_factory=dict)
    report: dict | None = None

    @property
    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of the config as written, without ``output.dir``
        (where a run is written does not change what it contains)."""
        raw = dict(self.raw)
        raw["output"] = {k: v for k, v in raw.get("output", {}).items() if k != "dir"}
        text = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_toml(cls, path) -> JobConfig:
        """Read and validate a TOML file (relative paths are relative to the file)."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path} ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        return cls.from_dict(raw, base_dir=path.parent)

    @classmethod
    def from_dict(cls, raw: dict, *, base_dir=".") -> JobConfig:
        """Validate a parsed config; every problem is a :class:`ConfigError`."""
        base = Path(base_dir)
        _check_table(raw, "")
        for sec in ("inputs", "risk", "segments", "output", "pseudonymisation", "quality",
                    "report"):
            if sec in raw:
                if not isinstance(raw[sec], dict):
                    raise ConfigError(f"[{sec}] must be a table")
                _check_table(raw[sec], sec)
        if "fit" in raw.get("risk", {}):
            _check_table(raw["risk"]["fit"], "risk.fit")
        if "index_date" not in raw:
            raise ConfigError("missing key 'index_date'")
        # a TOML offset date-time keeps its own wall-clock day (the contract's date rule)
        index_date = naive_timestamp(parse_iso_date(raw["index_date"])).normalize()
        inputs = raw.get("inputs", {})
        for key in ("register", "events", "activity"):
            if key not in inputs:
                raise ConfigError(f"missing key '{key}' in [inputs]")
        output = raw.get("output", {})
        if "dir" not in output:
            raise ConfigError("missing key 'dir' in [output]")
        pseudo = raw.get("pseudonymisation", {})
        if "key_env" not in pseudo:
            raise ConfigError("missing key 'key_env' in [pseudonymisation] (the name of the "
                              "environment variable holding the key; never the key itself)")
        check_key_env(pseudo["key_env"], "key_env in [pseudonymisation]")
        codelists = raw.get("codelists", {})
        if not isinstance(codelists, dict):
            raise ConfigError("[codelists] must be a table")
        codelists = _check_codelists(codelists, base)
        rules = _check_rules(raw.get("rules", []))
        risk = raw.get("risk", {})
        if "model" in risk and "fit" in risk:
            raise ConfigError("[risk]: give 'model' or [risk.fit], not both")
        risk_fit = _check_fit(risk["fit"]) if "fit" in risk else None
        if "fit" in risk and "outcomes" not in inputs:
            raise ConfigError("[risk.fit] needs an 'outcomes' input")
        has_risk = "model" in risk or "fit" in risk
        rank_by = output.get("rank_by", "risk")
        uses_risk = rank_by == "risk" or any(
            r.top_fraction is not None and r.rank_column == "risk" for r in rules) or any(
            c.column in ("risk", "tier") for r in rules for c in r.where)
        if uses_risk and not has_risk:
            raise ConfigError("rank_by/rules use 'risk' but [risk] has no 'model' or [risk.fit]")
        cuts = _check_tier_cuts(risk.get("tier_cuts", [0.005, 0.05, 0.2]))
        fmt = output.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise ConfigError("[output] format must be 'csv' or 'parquet'")
        include = _check_include_columns(output.get("include_columns", []))
        id_column = pseudo.get("id_column", "nhs_number")
        if id_column not in ("nhs_number", "patient_id"):
            raise ConfigError("[pseudonymisation] id_column must be 'nhs_number' or 'patient_id'")
        seg = raw.get("segments", {})
        segments = seg.get("enabled", True)
        segment_rules = seg.get("rules", "bridges_to_health")
        if segments:
            segment_rules = _check_segment_rules(segment_rules, base)
        quality = dict(_QUALITY_DEFAULTS)
        quality.update({k: _fraction(v, f"[quality] {k}")
                        for k, v in raw.get("quality", {}).items()})
        config = cls(
            index_date=index_date,
            inputs={k: base / v for k, v in inputs.items()},
            output_dir=base / output["dir"],
            rules=rules,
            key_env=pseudo["key_env"],
            raw=raw,
            name=str(raw.get("name", "caseload")),
            codelists=codelists,
            risk_model=base / risk["model"] if "model" in risk else None,
            risk_fit=risk_fit,
            tier_cuts=cuts,
            segments=segments,
            segment_rules=segment_rules,
            per_practice=bool(output.get("per_practice", False)),
            format=fmt,
            include_columns=include,
            rank_by=rank_by,
            id_column=id_column,
            allow_key_rotation=bool(pseudo.get("allow_key_rotation", False)),
            quality=quality,
            report=_check_report(raw["report"]) if "report" in raw else None,
        )
        from pophealth.jobs.probe import check_pipeline

        check_pipeline(config)  # columns, lists and rules fit together (zero rows)
        return config
