"""A job input whose every column carries sentinel values, and a scanner that finds them.

Used by the leak scan (``test_leak_scan.py``) and the rerun test
(``test_rerun_processes.py``). Every string sentinel carries a marker (``SENT...``,
``ZZ99SENT``, ``SENTINEL-TEXT-``) so a truncated or re-cased leak is found too; NHS
numbers come from the never-issued 999 range (valid and invalid Modulus 11, computed here,
not by pophealth); patient ids are 9-digit ``98765xxxx``; dates are every input date;
costs carry the decimals ``31415.93`` / ``27182.82``.

What may legitimately appear: practice and PCN codes in the files whose contract carries
them (caseload, changes and practice lists, ``index.csv``, the manifest's ``by_pcn``) and in
output *file names* (``<slug>-<12 hex>``), which are built from them by design; and the
job's own index date.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

INDEX_DATE = "2025-04-01"
KEY_HEX = "5e" * 32
KEY_ENV = "PH_LEAK_KEY"
ID_BASE = 987_650_001
UNKNOWN_ID_BASE = 987_659_001  # activity for patients not on the register
COST_SENTINELS = (31415.93, 27182.82)
ORG_MARKERS = ("SENTPRAC", "SENTPCN")
#: every string sentinel contains one of these (checked case-insensitively)
MARKERS = ("SENTLSOA", "SENTPRAC", "SENTPCN", "SENTICB", "SENTSEX", "SENTKIND", "SENTSET",
           "SENTSYS", "ZZ99SENT", "SENTINEL-TEXT", "SENTID")
_STEM = re.compile(r"SENT(?:PRAC|PCN)\d+-[0-9a-f]{12}")  # an output file name


def mod11_check(nine: str) -> int | None:
    """NHS number check digit (NHS Data Dictionary, Modulus 11); None when it would be 10."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else (None if check == 10 else check)


def valid_nhs_numbers(n: int, start: int = 1) -> list[str]:
    """``n`` valid NHS numbers ``999`` + 6-digit serial + check digit, from ``start``."""
    out, serial = [], start
    while len(out) < n:
        nine = f"999{serial:06d}"
        check = mod11_check(nine)
        if check is not None:
            out.append(nine + str(check))
        serial += 1
    return out


def invalid_nhs_numbers(n: int) -> list[str]:
    """``n`` 10-digit 999-range numbers with a wrong check digit; the first is 9990000019."""
    out = []
    for v in valid_nhs_numbers(n, start=1) if n else []:
        out.append(v[:-1] + str((int(v[-1]) + 1) % 10))
    return out


@dataclass
class Sentinels:
    """Every sentinel value of one job input, and where it may legitimately appear."""

    nhs: set = field(default_factory=set)
    ids: set = field(default_factory=set)
    dates: set = field(default_factory=set)
    strings: set = field(default_factory=set)

    def add_frame(self, frame: pd.DataFrame) -> None:
        for col in frame.columns:
            s = frame[col]
            if col == "nhs_number":
                self.nhs |= {str(v) for v in s.dropna()}
            elif col == "patient_id" and pd.api.types.is_numeric_dtype(s):
                self.ids |= {str(int(v)) for v in s.dropna()}
            elif pd.api.types.is_datetime64_any_dtype(s):
                self.dates |= {str(d.date()) for d in s.dropna()}
            elif s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype):
                text = {str(v) for v in pd.unique(s.dropna().astype(str))}
                self.strings |= {v for v in text if any(m in v.upper() for m in MARKERS)}
                self.dates |= {v for v in text if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)}
        self.dates.discard(INDEX_DATE)  # the job's own index date is printed on purpose

    def find(self, text: str, *, org_codes_allowed: bool = False) -> list[str]:
        """Every sentinel (or fragment) found in ``text``, described without repeating it."""
        text = _STEM.sub("<file-stem>", text)  # output file names are built from org codes
        hits = []
        upper = text.upper()
        for m in MARKERS:
            if org_codes_allowed and m in ORG_MARKERS:
                continue
            if m in upper:
                hits.append(f"marker {m}")
        digits = re.findall(r"\d{8,}", text)
        nhs8 = {v[i:i + 8] for v in self.nhs for i in range(len(v) - 7)}
        for run in digits:
            if any(run[i:i + 8] in nhs8 for i in range(len(run) - 7)):
                hits.append("an 8+ digit piece of an NHS number")
            if any(run[i:i + 9] in self.ids for i in range(len(run) - 8)):
                hits.append("a patient id")
            if any(f"{run[i:i + 4]}-{run[i + 4:i + 6]}-{run[i + 6:i + 8]}" in self.dates
                   for i in range(len(run) - 7)):
                hits.append("a compact input date")
        spaced = re.findall(r"\b\d{3}[ -]\d{3}[ -]\d{4}\b", text)
        if any(re.sub(r"\D", "", s) in self.nhs for s in spaced):
            hits.append("a spaced NHS number")
        if set(re.findall(r"\d{4}-\d{2}-\d{2}", text)) & self.dates:
            hits.append("an input date")
        if any(f"{c:.2f}" in text for c in COST_SENTINELS):
            hits.append("a sentinel cost")
        return hits


def sentinel_population(n: int = 300, random_state: int = 3):
    """(register, events, activity, sentinels): a synthetic population whose every column
    carries sentinel values (see the module docstring)."""
    from pophealth.synthetic import make_population

    pop = make_population(n, random_state=random_state, index_date=INDEX_DATE)
    reg, ev, act = pop.register.copy(), pop.events.copy(), pop.activity.copy()
    old_ids = reg["patient_id"].to_numpy()
    new_ids = ID_BASE + np.arange(n, dtype=np.int64)
    remap = pd.Series(new_ids, index=old_ids)
    reg["patient_id"] = new_ids
    ev["patient_id"] = remap.reindex(ev["patient_id"]).to_numpy()
    act["patient_id"] = remap.reindex(act["patient_id"]).to_numpy()
    nhs = np.array(valid_nhs_numbers(n), dtype=object)
    nhs[[5, 6]] = invalid_nhs_numbers(2)  # 2 of 300 invalid: below the 1% threshold
    reg["nhs_number"] = nhs
    for col, prefix in (("lsoa", "SENTLSOA"), ("practice", "SENTPRAC"), ("pcn", "SENTPCN"),
                        ("icb", "SENTICB")):
        codes = pd.factorize(reg[col])[0]
        reg[col] = np.array([f"{prefix}{c + 1:02d}" for c in codes], dtype=object)
    codes = pd.factorize(reg["ethnicity"])[0]
    reg["ethnicity"] = np.array([f"SENTINEL-TEXT-ETH-{c:02d}" for c in codes], dtype=object)
    reg["note"] = [f"SENTINEL-TEXT-REG-{i:04d}" for i in range(n)]
    reg["registered_to"] = pd.NaT
    reg.loc[[7, 8], "registered_to"] = pd.to_datetime(["1999-03-04", "2001-05-06"])
    reg["registered_to"] = reg["registered_to"].astype("datetime64[ns]")
    # events: unrecognised sentinel codes and a sentinel code system, both below thresholds
    extra = pd.DataFrame({
        "patient_id": new_ids[:20],
        "date": pd.date_range("1901-02-03", periods=20, freq="7D"),
        "code": [f"ZZ99SENT{i:03d}" for i in range(10)] + ["SYN0010"] * 10,
        "code_system": ["synthetic_pc"] * 10 + [f"SENTSYS{i:02d}" for i in range(10)],
        "setting": ["primary"] * 20})
    ev = pd.concat([ev.astype({"code": object, "code_system": object, "setting": object}),
                    extra], ignore_index=True)
    ev["note"] = [f"SENTINEL-TEXT-EV-{i:05d}" for i in range(len(ev))]
    extra = pd.DataFrame({"patient_id": new_ids[:2],
                          "date": pd.to_datetime(["1902-03-04", "1902-04-05"]),
                          "kind": ["gp", "outpatient"], "cost": list(COST_SENTINELS),
                          "length_of_stay": [0, 0]})
    act = pd.concat([act.astype({"kind": object}), extra], ignore_index=True)
    act["note"] = [f"SENTINEL-TEXT-ACT-{i:05d}" for i in range(len(act))]
    sent = Sentinels()
    for frame in (reg, ev, act):
        sent.add_frame(frame)
    return reg, ev, act, sent


def write_inputs(root: Path, reg, ev, act) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("register", reg), ("events", ev), ("activity", act)):
        paths[name] = root / f"{name}.parquet"
        frame.to_parquet(paths[name])
    return paths


def job_config(inputs: dict, out: Path, **extra) -> dict:
    cfg = {
        "index_date": INDEX_DATE,
        "name": "leak-scan",
        "inputs": {k: str(v) for k, v in inputs.items()},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top cost", "top_fraction": 0.1, "by": "practice",
                   "rank_column": "prior_cost"},
                  {"name": "aged 80+", "where": [["age", ">=", 80]]}],
        "output": {"dir": str(out), "rank_by": "prior_cost", "per_practice": True},
        "pseudonymisation": {"key_env": KEY_ENV},
    }
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = values
    return cfg


def write_toml(cfg: dict, path: Path) -> Path:
    """The config as TOML (strings JSON-quoted, which TOML accepts)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in cfg.items() if not isinstance(v, (dict, list))]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    for rule in cfg.get("rules", []):
        lines.append("[[rules]]")
        lines += [f"{kk} = {val(vv)}" for kk, vv in rule.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
