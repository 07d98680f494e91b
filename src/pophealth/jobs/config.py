"""The stratification job's configuration: :class:`JobConfig`, read from TOML and validated.

Unknown keys and wrongly typed values are :class:`~pophealth.contracts.exceptions.ConfigError`;
see ``examples/job.toml`` for every key. :func:`pophealth.jobs.run_job` runs a config.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pophealth.cohorts.caseload import SelectionRule
from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.schema import naive_timestamp

__all__ = ["JobConfig"]

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
    "quality": {"max_invalid_id_fraction": float, "max_unrecognised_code_fraction": float,
                "max_unknown_patient_activity_fraction": float},
}
_SECTIONS = {"inputs", "codelists", "risk", "segments", "rules", "output", "pseudonymisation",
             "quality"}
_INDICES = {"charlson", "elixhauser", "hfrs", "efi", "cms"}
_IDENTIFIERS = {"nhs_number", "patient_id", "date_of_birth", "name", "forename", "surname",
                "address", "postcode", "telephone", "email"}


def _check_table(table: dict, section: str) -> None:
    spec = _SCHEMA[section]
    where = f"[{section}]" if section else "top level"
    for key, value in table.items():
        if section == "" and key in _SECTIONS:
            continue
        if key not in spec:
            allowed = sorted(spec) + (sorted(_SECTIONS) if section == "" else [])
            raise ConfigError(f"unknown key '{key}' in {where} (allowed: {', '.join(allowed)})")
        kind = spec[key]
        if kind == "date":
            ok = isinstance(value, str) or hasattr(value, "isoformat")
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"key '{key}' in {where} has the wrong type "
                              f"(expected {getattr(kind, '__name__', kind)})")


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
    ...     "risk": {"model": "model.joblib"},
    ...     "rules": [{"name": "top 2% risk", "top_fraction": 0.02, "by": "practice"}],
    ...     "output": {"dir": "out"},
    ...     "pseudonymisation": {"key_env": "POPHEALTH_KEY"}}, base_dir="/data")
    >>> cfg.output_dir.as_posix(), len(cfg.config_hash)
    ('/data/out', 64)
    >>> JobConfig.from_dict({"index_date": "2025-04-01", "colour": "blue"})
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: unknown key 'colour' in top level (allowed: index_date, name, codelists, inputs, output, pseudonymisation, quality, risk, rules, segments)
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
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(raw, base_dir=path.parent)

    @classmethod
    def from_dict(cls, raw: dict, *, base_dir=".") -> JobConfig:
        """Validate a parsed config; every problem is a :class:`ConfigError`."""
        base = Path(base_dir)
        _check_table(raw, "")
        for sec in ("inputs", "risk", "segments", "output", "pseudonymisation", "quality"):
            if sec in raw:
                if not isinstance(raw[sec], dict):
                    raise ConfigError(f"[{sec}] must be a table")
                _check_table(raw[sec], sec)
        if "fit" in raw.get("risk", {}):
            _check_table(raw["risk"]["fit"], "risk.fit")
        if "index_date" not in raw:
            raise ConfigError("missing key 'index_date'")
        try:
            index_date = naive_timestamp(str(raw["index_date"])).normalize()  # wall clock
        except ValueError:
            raise ConfigError("index_date is not a date (use YYYY-MM-DD)") from None
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
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pseudo["key_env"]):
            raise ConfigError("key_env in [pseudonymisation] must be an environment variable "
                              "name, not a key")
        codelists = raw.get("codelists", {})
        if not isinstance(codelists, dict):
            raise ConfigError("[codelists] must be a table")
        for key, value in codelists.items():
            if key not in _INDICES or not isinstance(value, str):
                raise ConfigError(f"[codelists] key '{key}': expected one of "
                                  f"{', '.join(sorted(_INDICES))} = \"<list>\" or \"none\"")
        rules_raw = raw.get("rules", [])
        if not isinstance(rules_raw, list) or not rules_raw:
            raise ConfigError("at least one [[rules]] table is needed")
        rules = tuple(SelectionRule.from_dict(r) for r in rules_raw)
        if len({r.name for r in rules}) != len(rules):
            raise ConfigError("[[rules]] names must be unique")
        risk = raw.get("risk", {})
        if "model" in risk and "fit" in risk:
            raise ConfigError("[risk]: give 'model' or [risk.fit], not both")
        if "fit" in risk and "outcomes" not in inputs:
            raise ConfigError("[risk.fit] needs an 'outcomes' input")
        has_risk = "model" in risk or "fit" in risk
        rank_by = str(output.get("rank_by", "risk"))
        uses_risk = rank_by == "risk" or any(
            r.top_fraction is not None and r.rank_column == "risk" for r in rules) or any(
            c.column in ("risk", "tier") for r in rules for c in r.where)
        if uses_risk and not has_risk:
            raise ConfigError("rank_by/rules use 'risk' but [risk] has no 'model' or [risk.fit]")
        if len(risk.get("tier_cuts", (0, 0, 0))) != 3:
            raise ConfigError("[risk] tier_cuts needs three cumulative fractions")
        fmt = output.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise ConfigError("[output] format must be 'csv' or 'parquet'")
        include = tuple(output.get("include_columns", ()))
        bad = sorted(set(include) & _IDENTIFIERS)
        if bad:
            raise ConfigError(f"[output] include_columns may not hold identifiers: {bad}")
        id_column = pseudo.get("id_column", "nhs_number")
        if id_column not in ("nhs_number", "patient_id"):
            raise ConfigError("[pseudonymisation] id_column must be 'nhs_number' or 'patient_id'")
        cuts = tuple(float(c) for c in risk.get("tier_cuts", (0.005, 0.05, 0.2)))
        seg = raw.get("segments", {})
        quality = {"max_invalid_id_fraction": 0.01, "max_unrecognised_code_fraction": 0.2,
                   "max_unknown_patient_activity_fraction": 0.05}
        quality.update({k: float(v) for k, v in raw.get("quality", {}).items()})
        return cls(
            index_date=index_date,
            inputs={k: base / v for k, v in inputs.items()},
            output_dir=base / output["dir"],
            rules=rules,
            key_env=pseudo["key_env"],
            raw=raw,
            name=str(raw.get("name", "caseload")),
            codelists=dict(codelists),
            risk_model=base / risk["model"] if "model" in risk else None,
            risk_fit=dict(risk["fit"]) if "fit" in risk else None,
            tier_cuts=cuts,
            segments=bool(seg.get("enabled", True)),
            segment_rules=str(seg.get("rules", "bridges_to_health")),
            per_practice=bool(output.get("per_practice", False)),
            format=fmt,
            include_columns=include,
            rank_by=rank_by,
            id_column=id_column,
            allow_key_rotation=bool(pseudo.get("allow_key_rotation", False)),
            quality=quality,
        )
