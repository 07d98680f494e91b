"""What the job writes (issue 13, items 1, 3, 6, 12, 13): allow-listed columns only, every
selected patient on exactly one list, collision-free visible file names, formula-safe CSV
cells and manifest digests that ``sha256sum -c`` accepts."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from pophealth.cli import main
from pophealth.contracts.exceptions import ConfigError
from pophealth.contracts.nhs_number import is_valid_nhs_number
from pophealth.jobs import JobConfig, read_caseload, run_job
from pophealth.jobs.columns import INCLUDABLE_COLUMNS, check_include_columns
from pophealth.jobs.csvsafe import neutralise_formulas, restore_formulas
from pophealth.jobs.filenames import file_stem, normalise_codes
from pophealth.jobs.pseudonymise import pseudonymise
from pophealth.jobs.runstore import _write_table

KEY = "33" * 32
SENTINEL_NHS = "9990000018"  # valid Modulus 11, never-issued 999 range
INDEX_DATE = pd.Timestamp("2025-04-01")

# PCN codes that broke file names or spreadsheets; None/""/"  " are all "no PCN"
PCN_CODES = ["P/1", "P_1", ".hidden", "..", "p1", "P1", "Ünïcødé PCN", "NA", "None",
             "=HYPERLINK(\"http://evil\",\"x\")", "-PCN", "+PCN", "@SUM(A1)", "\tTAB",
             "'quoted", None, "", "  "]
PRACTICE_CODES = ["P/1", "P_1", ".prac", "p1", "P1", "=1+1"]
FORMULA_RULE = "=cmd|' /C calc'!A0 aged 60+"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """A synthetic population with crafted PCN and practice codes and a sentinel patient."""
    from pophealth.synthetic import make_population

    pop = make_population(1_500, random_state=5, index_date=str(INDEX_DATE.date()))
    reg = pop.register.copy()
    assert is_valid_nhs_number([SENTINEL_NHS])[0]
    assert SENTINEL_NHS not in set(reg["nhs_number"])
    n = len(reg)
    reg["pcn"] = pd.Series([PCN_CODES[i % len(PCN_CODES)] for i in range(n)], dtype=object)
    practice = pd.Categorical(reg["practice"]).codes
    reg["practice"] = np.array(PRACTICE_CODES, dtype=object)[practice % len(PRACTICE_CODES)]
    reg.loc[0, ["nhs_number", "age", "pcn"]] = [SENTINEL_NHS, 90, None]
    reg["date_of_birth"] = INDEX_DATE - pd.to_timedelta(reg["age"] * 365.25 + 100, unit="D")
    root = tmp_path_factory.mktemp("crafted")
    reg.to_parquet(root / "register.parquet")
    pop.events.to_parquet(root / "events.parquet")
    pop.activity.to_parquet(root / "activity.parquet")
    return root


def _config(pop, out, **overrides) -> dict:
    cfg = {
        "index_date": str(INDEX_DATE.date()),
        "name": "outputs",
        "inputs": {"register": str(pop / "register.parquet"),
                   "events": str(pop / "events.parquet"),
                   "activity": str(pop / "activity.parquet")},
        "codelists": {"efi": "efi_snomed_synthetic", "cms": "cms_snomed_synthetic"},
        "rules": [{"name": FORMULA_RULE, "where": [["age", ">=", 60]]}],
        "output": {"dir": str(out), "rank_by": "prior_cost", "per_practice": True},
        "pseudonymisation": {"key_env": "PH_OUT_KEY"},
    }
    for key, value in overrides.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    return cfg


def _run(pop, out, **overrides):
    return run_job(JobConfig.from_dict(_config(pop, out, **overrides)),
                   environ={"PH_OUT_KEY": KEY})


def _expected_selection(pop) -> pd.DataFrame:
    """By hand from the register: aged 60+ and alive and registered on the index date."""
    reg = pd.read_parquet(pop / "register.parquet")
    alive = reg["date_of_death"].isna() | (reg["date_of_death"] > INDEX_DATE)
    registered = reg["registered_from"].isna() | (reg["registered_from"] <= INDEX_DATE)
    sel = reg[(reg["age"] >= 60) & alive & registered].copy()
    sel["pseudo_id"] = pseudonymise(sel["nhs_number"].to_numpy(), bytes.fromhex(KEY))
    pcn = sel["pcn"].astype(object)
    sel["pcn_code"] = pcn.where(pcn.notna() & (pcn.astype(str).str.strip() != ""), "")
    return sel


@pytest.fixture(scope="module")
def published(crafted, tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "out"
    return _run(crafted, out)


def _run_files(run_dir) -> dict:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- 1: allow-listed columns


@pytest.mark.parametrize("column", ["_pseudo_source", "patient_id", "nhs_number",
                                    "date_of_birth", "lsoa", "_pcn_key", "pcn", "postcode"])
def test_non_allow_listed_include_columns_are_refused_before_data_is_read(tmp_path, column):
    cfg = JobConfig.from_dict(_config(tmp_path / "no-such-input", tmp_path / "out"))
    # bypass config.py's own deny-list so run_job's allow-list check is what is tested
    cfg = dataclasses.replace(cfg, include_columns=("age", column))
    with pytest.raises(ConfigError, match=rf"include_columns: \['{column}'\] not allowed"):
        run_job(cfg, environ={"PH_OUT_KEY": KEY})
    assert not (tmp_path / "out").exists()  # refused before the output or inputs were touched


def test_pseudo_source_in_include_columns_is_cli_exit_78(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path / "no-such-input", tmp_path / "out",
                  output={"include_columns": ["age", "_pseudo_source"]})
    lines = [f'index_date = "{cfg["index_date"]}"']
    for section in ("inputs", "codelists", "output", "pseudonymisation"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg[section].items()]
    lines += ["[[rules]]", 'name = "aged 60+"', 'where = [["age", ">=", 60]]']
    path = tmp_path / "job.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("PH_OUT_KEY", KEY)
    assert main(["stratify", str(path)]) == 78
    assert "'_pseudo_source'] not allowed in caseload files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_check_include_columns_refuses_repeats_and_non_strings():
    with pytest.raises(ConfigError, match="listed twice"):
        check_include_columns(["age", "age"])
    with pytest.raises(ConfigError, match="not allowed"):
        check_include_columns([1])


def test_sentinel_nhs_number_is_in_no_output_whatever_is_included(crafted, tmp_path):
    available = sorted(INCLUDABLE_COLUMNS - {"age_band"})  # no age_band in this table
    res = _run(crafted, tmp_path / "out", output={"include_columns": available})
    cl = read_caseload(res.run_dir)
    assert set(available) <= set(cl.columns)
    assert pd.api.types.is_integer_dtype(cl["age"])  # numbers stay numbers
    assert pd.api.types.is_float_dtype(cl["prior_cost"])
    assert set(cl.columns) <= set(INCLUDABLE_COLUMNS) | {
        "pseudo_id", "pcn", "practice", "rank", "risk", "tier", "segment", "status", "rule",
        "reasons", "index_date", "run_id"}
    sentinel_pid = pseudonymise([SENTINEL_NHS], bytes.fromhex(KEY))[0]
    assert sentinel_pid in set(cl["pseudo_id"])  # the sentinel was selected and listed
    reg = pd.read_parquet(crafted / "register.parquet")
    blob = b"\n".join(_run_files(tmp_path / "out").values()).decode("utf-8", "replace")
    assert len(blob) > 20_000
    assert SENTINEL_NHS not in blob and "999 000 0018" not in blob
    listed = reg[reg["age"] >= 60]["nhs_number"]
    assert len(listed) > 100
    assert not any(nhs in blob for nhs in listed)  # no listed patient's NHS number at all


def test_allow_listed_column_missing_from_the_table_is_a_config_error(crafted, tmp_path):
    with pytest.raises(ConfigError, match=r"the patient table has no column\(s\) \['age_band'\]"):
        _run(crafted, tmp_path / "out", output={"include_columns": ["age", "age_band"]})
    assert not (tmp_path / "out" / "current").exists()
    assert not [p for p in (tmp_path / "out").rglob("*.csv")]


# ----------------------------------------------------------------- 3: nobody lost


def test_every_selected_patient_is_on_exactly_one_pcn_list(crafted, published):
    expect = _expected_selection(crafted)
    n_unknown = int((expect["pcn_code"] == "").sum())
    assert len(expect) > 200 and n_unknown > 30  # None, "" and "  " PCNs are selected
    m = published.manifest
    caseload_files = {k: v for k, v in m["files"].items() if k.startswith("caseload/")}
    assert sum(v["rows"] for v in caseload_files.values()) == len(expect)
    assert m["counts"]["caseload_rows"] == len(expect)
    assert sum(m["counts"]["by_pcn"].values()) == len(expect)
    assert m["counts"]["unknown_pcn"] == n_unknown == m["counts"]["by_pcn"][""]
    assert caseload_files["caseload/unknown-pcn.csv"]["rows"] == n_unknown
    unknown = pd.read_csv(published.run_dir / "caseload" / "unknown-pcn.csv",
                          dtype={"pseudo_id": str})
    assert set(unknown["pseudo_id"]) == set(expect.loc[expect["pcn_code"] == "", "pseudo_id"])
    # None, "" and blank PCNs are one list, ranked once: 1..n
    assert unknown["rank"].tolist() == list(range(1, n_unknown + 1))
    cl = read_caseload(published.run_dir)
    assert len(cl) == len(expect) and cl["pseudo_id"].is_unique
    assert set(cl["pseudo_id"]) == set(expect["pseudo_id"])
    got = cl.set_index("pseudo_id")["pcn"].sort_index()
    want = expect.set_index("pseudo_id")["pcn_code"].sort_index()
    assert got.tolist() == want.tolist()
    practice = read_caseload(published.run_dir, kind="practice")
    assert len(practice) == len(expect) and set(practice["pseudo_id"]) == set(expect["pseudo_id"])


def test_unknown_pcn_patients_who_leave_are_in_the_unknown_pcn_changes(crafted, tmp_path):
    out = tmp_path / "out"
    first = _run(crafted, out)
    second = _run(crafted, out, rules=[{"name": "aged 70+", "where": [["age", ">=", 70]]}])
    expect = _expected_selection(crafted)
    gone = expect[(expect["age"] < 70) & (expect["pcn_code"] == "")]
    assert len(gone) > 5
    changes = pd.read_csv(second.run_dir / "changes" / "unknown-pcn.csv",
                          dtype={"pseudo_id": str})
    assert set(changes.loc[changes["change"] == "left", "pseudo_id"]) == set(gone["pseudo_id"])
    assert second.manifest["counts"]["left"] == int((expect["age"] < 70).sum())
    assert first.run_id != second.run_id


def test_normalise_codes_treats_none_nan_empty_and_blank_as_missing():
    assert normalise_codes([None, np.nan, pd.NA, "", " \t", "U1", "NA", 5]).tolist() == [
        "", "", "", "", "", "U1", "NA", "5"]


# ----------------------------------------------------------------- 6: file names


def test_file_names_are_collision_free_visible_and_indexed(published):
    run = published.run_dir
    index = pd.read_csv(run / "index.csv", dtype=str, keep_default_na=False)
    names = [p.name for p in run.rglob("*") if p.is_file()]
    assert not [n for n in names if n.startswith(".")]
    for kind in ("caseload", "changes", "practice"):
        files = [p.name for p in (run / kind).iterdir()]
        assert len({f.casefold() for f in files}) == len(files)  # case-insensitive FS too
    caseload_index = index[index["kind"] == "caseload"]
    distinct = {c for c in PCN_CODES if c is not None and c.strip()}
    assert len(caseload_index) == len(distinct) + 1  # + the unknown-pcn list
    assert len(list((run / "caseload").iterdir())) == len(distinct) + 1
    # the name is the slug plus the first 12 hex digits of SHA-256 of the exact code
    by_code = dict(zip(restore_formulas(caseload_index)["code"], caseload_index["file"],
                       strict=True))
    assert by_code["P/1"] == f"caseload/P_1-{_sha('P/1')}.csv"
    assert by_code["P_1"] == f"caseload/P_1-{_sha('P_1')}.csv"
    assert by_code[".hidden"] == f"caseload/hidden-{_sha('.hidden')}.csv"
    assert by_code[".."] == f"caseload/code-{_sha('..')}.csv"
    assert by_code["p1"] != by_code["P1"] and by_code["p1"].casefold() != by_code["P1"].casefold()
    assert by_code["Ünïcødé PCN"] == f"caseload/Unic_de_PCN-{_sha('Ünïcødé PCN')}.csv"
    assert by_code[""] == "caseload/unknown-pcn.csv"
    # every file holds exactly the code the index says it does
    for code, rel in by_code.items():
        part = pd.read_csv(run / rel, dtype={"pcn": str}, keep_default_na=False)
        assert len(part) > 0
        assert set(restore_formulas(part)["pcn"]) == {code}
    practice_index = restore_formulas(index[index["kind"] == "practice"])
    assert sorted(practice_index["code"]) == sorted(PRACTICE_CODES)
    assert practice_index["rows"].astype(int).sum() == published.manifest["counts"][
        "caseload_rows"]


def test_read_caseload_reads_through_the_index(published, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(published.run_dir, run)
    n = published.manifest["counts"]["caseload_rows"]
    (run / "caseload" / "stray.csv").write_text("pseudo_id,pcn\nx,y\n")  # not in the index
    assert len(read_caseload(run)) == n
    unknown = run / "caseload" / "unknown-pcn.csv"
    unknown.unlink()
    with pytest.raises(FileNotFoundError):
        read_caseload(run)
    with pytest.raises(ValueError, match="kind must be"):
        read_caseload(run, kind="../secrets")


@pytest.mark.parametrize("code, stem", [
    ("P/1", "P_1-" + _sha("P/1")), ("...", "code-" + _sha("...")), (".x", "x-" + _sha(".x")),
    ("CON", "CON-" + _sha("CON")), ("a" * 80, "a" * 32 + "-" + _sha("a" * 80)),
    ("é", "e-" + _sha("é")), ("日本", "code-" + _sha("日本")), ("", "unknown-pcn"),
])
def test_file_stem_by_hand(code, stem):
    assert file_stem(code) == stem


# ----------------------------------------------------------------- 12: formula injection


def test_no_csv_cell_starts_a_formula_and_codes_round_trip(published):
    run = published.run_dir
    cells = []
    for path in sorted(run.rglob("*.csv")):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        cells += [c for row in rows for c in row]
    assert len(cells) > 5_000
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r", "\n", "\0")]
    assert dangerous == []
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in cells and "'" + FORMULA_RULE in cells
    assert "'-PCN" in cells and "'+PCN" in cells and "'@SUM(A1)" in cells
    assert "'\tTAB" in cells and "''quoted" in cells and "'=1+1" in cells
    cl = read_caseload(run)
    assert set(cl["pcn"]) == {c for c in PCN_CODES if c is not None and c.strip()} | {""}
    assert set(cl["rule"]) == {FORMULA_RULE}
    assert set(read_caseload(run, kind="practice")["practice"]) == set(PRACTICE_CODES)
    assert pd.api.types.is_integer_dtype(cl["rank"])


def test_neutralise_formulas_escapes_text_only_and_is_reversible():
    frame = pd.DataFrame({
        "text": ["=1+1", "+44", "-5", "@A1", "\tx", "\rx", "'x", "''x", "x=1", "", None],
        "number": [-5, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8],
        "real": [-0.5] * 11,
        "cat": pd.Categorical(["-a"] * 5 + ["b"] * 6),
    })
    out = neutralise_formulas(frame)
    assert out["text"].tolist() == ["'=1+1", "'+44", "'-5", "'@A1", "'\tx", "'\rx", "''x",
                                    "'''x", "x=1", "", None]
    assert out["number"].tolist() == [-5, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert out["number"].dtype == np.int64 and out["real"].tolist() == [-0.5] * 11
    assert out["cat"].tolist() == ["'-a"] * 5 + ["b"] * 6
    assert frame["text"].iloc[0] == "=1+1"  # the input is not modified
    back = restore_formulas(out)
    assert back["text"].tolist() == frame["text"].tolist()


def test_csv_files_round_trip_text_with_line_breaks_and_keep_numbers(tmp_path):
    frame = pd.DataFrame({
        "pseudo_id": ["a", "b", "c", "d"],
        "pcn": ["\rCR", "x\ry", "p\nq", "NA"],
        "rule": ["=1+1", "-2", "'q", "plain"],
        "rank": [1, 2, 3, 4],
        "risk": [-0.5, 0.25, np.nan, 1.0],
        "previous_rank": pd.array([1, None, 3, None], "Int64"),
    })
    _write_table(frame, tmp_path / "caseload" / "x.csv", "csv")
    raw = (tmp_path / "caseload" / "x.csv").read_bytes()
    assert raw.count(b"\n") == 6  # header + 4 rows; the LF inside "p\nq" is quoted
    back = read_caseload(tmp_path)  # a run without index.csv: read by listing the folder
    assert back[["pseudo_id", "pcn", "rule"]].equals(frame[["pseudo_id", "pcn", "rule"]])
    assert back["rank"].tolist() == [1, 2, 3, 4] and back["rank"].dtype == np.int64
    assert back["risk"].iloc[[0, 1, 3]].tolist() == [-0.5, 0.25, 1.0]
    assert np.isnan(back["risk"].iloc[2]) and back["previous_rank"].isna().sum() == 2


# ----------------------------------------------------------------- 13: manifest digests


def test_manifest_sha256_is_the_digest_of_the_file_bytes(published):
    run = published.run_dir
    files = published.manifest["files"]
    assert "index.csv" in files and len(files) > 10
    for rel, info in files.items():
        assert info["sha256"] == hashlib.sha256((run / rel).read_bytes()).hexdigest()
    on_disk = json.loads((run / "manifest.json").read_text())["files"]
    assert on_disk == files


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
def test_sha256sum_checks_a_run_from_its_manifest(published, tmp_path):
    run = published.run_dir
    files = published.manifest["files"]
    tool = shutil.which("sha256sum")
    sums = "".join(f"{info['sha256']}  {rel}\n" for rel, info in sorted(files.items()))
    (tmp_path / "SHA256SUMS").write_text(sums, encoding="utf-8")
    ok = subprocess.run([tool, "-c", "--quiet", str(tmp_path / "SHA256SUMS")], cwd=run,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    copy = tmp_path / "tampered"
    shutil.copytree(run, copy)
    target = copy / "caseload" / "unknown-pcn.csv"
    target.write_bytes(target.read_bytes().replace(b"selected", b"Selected", 1))
    bad = subprocess.run([tool, "-c", "--quiet", str(tmp_path / "SHA256SUMS")], cwd=copy,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown-pcn.csv" in bad.stdout
