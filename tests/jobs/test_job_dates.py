"""The job with tz-aware activity/event dates and Arrow ``date32`` dates of birth (issue 13, item 11).

One convention (:mod:`pophealth.contracts.schema`): tz-aware dates are compared on the local
wall-clock time of their own zone. The same clock readings written naive, as UTC and as
Europe/London must give the same caseload; ``date32`` dates of birth the same as midnight
``datetime64``. Crafted 00:30 BST boundary rows tell wall-clock time from UTC.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pophealth.contracts.exceptions import ConfigError, DataQualityWarning
from pophealth.jobs import JobConfig, read_caseload, run_job
from pophealth.jobs.pseudonymise import pseudonymise

KEY = "33" * 32
SENTINEL_NHS = "9990000018"  # valid Modulus 11, never-issued 999 range
SENTINEL_ID = 987654321
INDEX_DATE = "2025-04-01"


def _population():
    from pophealth.synthetic import make_population

    pop = make_population(1_200, random_state=7, index_date=INDEX_DATE)
    reg, ev, act = pop.register.copy(), pop.events.copy(), pop.activity.copy()
    old = reg.loc[0, "patient_id"]
    reg.loc[0, ["patient_id", "nhs_number"]] = [SENTINEL_ID, SENTINEL_NHS]
    reg["date_of_birth"] = reg["date_of_birth"].dt.normalize()
    ev["patient_id"] = ev["patient_id"].replace(old, SENTINEL_ID)
    act = act[act["patient_id"] != old]  # the sentinel's activity is exactly the rows below
    # By hand, index date 2025-04-01, window (2024-04-01 00:00, 2025-04-01 00:00] on the
    # wall clock (the London variant reads these clock readings as BST, UTC+1):
    #   emergency 2025-01-10 12:00           -> in
    #   emergency 2024-04-01 00:30 (1 April) -> in   (UTC rule: 23:30 on 31 March, out)
    #   ae        2025-04-01 00:30 (1 April) -> out  (UTC rule: 23:30 on 31 March, in)
    # So 2 emergency admissions (the UTC rule would give 1, and an A&E attendance).
    crafted = pd.DataFrame({
        "patient_id": SENTINEL_ID,
        "date": pd.to_datetime(["2025-01-10 12:00", "2024-04-01 00:30",
                                "2025-04-01 00:30"]).astype(act["date"].dtype),
        "kind": pd.Categorical(["emergency_admission", "emergency_admission", "ae"],
                               categories=act["kind"].cat.categories),
        "cost": [50_000.0, 0.0, 0.0], "length_of_stay": [10, 1, 0]})
    act = pd.concat([act, crafted], ignore_index=True)
    return reg, ev, act


def _zoned(zone: str):
    """The same clock readings stored tz-aware in ``zone`` (the synthetic dates are all
    midnights, never in a clock-change gap; the crafted rows are 00:30 and 12:00)."""
    def variant(reg, ev, act):
        return (reg.assign(date_of_birth=reg["date_of_birth"].dt.tz_localize(zone)),
                ev.assign(date=ev["date"].dt.tz_localize(zone)),
                act.assign(date=act["date"].dt.tz_localize(zone)))
    return variant


VARIANTS = {"utc": _zoned("UTC"), "london": _zoned("Europe/London")}


def _write(root, reg, ev, act, *, dob_date32=False):
    root.mkdir()
    if dob_date32:
        table = pa.Table.from_pandas(reg, preserve_index=False)
        i = table.schema.get_field_index("date_of_birth")
        table = table.set_column(i, pa.field("date_of_birth", pa.date32()),
                                 pa.array(reg["date_of_birth"].dt.date, pa.date32()))
        pq.write_table(table, root / "register.parquet")
    else:
        reg.to_parquet(root / "register.parquet")
    ev.to_parquet(root / "events.parquet")
    act.to_parquet(root / "activity.parquet")
    return root


def _run(root, out, index_date=INDEX_DATE):
    cfg = {
        "index_date": index_date, "name": "dates",
        "inputs": {k: str(root / f"{k}.parquet") for k in ("register", "events", "activity")},
        "codelists": {"efi": "efi_snomed_synthetic"},
        "rules": [{"name": "top 5% cost per practice", "top_fraction": 0.05, "by": "practice",
                   "rank_column": "prior_cost"}],
        "output": {"dir": str(out), "rank_by": "prior_cost"},
        "pseudonymisation": {"key_env": "PH_DATES_KEY"},
    }
    res = run_job(JobConfig.from_dict(cfg), environ={"PH_DATES_KEY": KEY})
    return read_caseload(res.run_dir).drop(columns=["run_id"]), res


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("dates")
    reg, ev, act = _population()
    return _run(_write(root / "naive", reg, ev, act), root / "out")


def test_naive_baseline_counts_the_boundary_admissions_on_the_wall_clock(baseline):
    cl, _ = baseline
    pid = pseudonymise([SENTINEL_NHS], bytes.fromhex(KEY))[0]
    row = cl[cl["pseudo_id"] == pid]
    assert len(row) == 1
    assert "factors: 2 emergency admission(s) in the last 12 months" in row["reasons"].iloc[0]


@pytest.mark.parametrize("variant", ["utc", "london"])
def test_tz_aware_dates_give_the_naive_wall_clock_caseload(variant, baseline, tmp_path):
    # activity, event and birth dates stored tz-aware with the same clock readings: the
    # caseload (including the sentinel's 2 boundary admissions) is the naive one
    reg, ev, act = VARIANTS[variant](*_population())
    assert isinstance(act["date"].dtype, pd.DatetimeTZDtype)
    assert isinstance(reg["date_of_birth"].dtype, pd.DatetimeTZDtype)
    cl, res = _run(_write(tmp_path / variant, reg, ev, act), tmp_path / "out")
    pd.testing.assert_frame_equal(cl, baseline[0])
    assert not res.reused


def test_an_index_date_with_a_time_or_zone_in_the_config_is_refused(tmp_path):
    # the job's index date is a calendar day written YYYY-MM-DD; a time or zone is a
    # config error (exit 78 from the CLI) before any data is read, never silently shifted
    reg, ev, act = VARIANTS["london"](*_population())
    with pytest.raises(ConfigError, match="index_date is not a date written YYYY-MM-DD"):
        _run(_write(tmp_path / "idx", reg, ev, act), tmp_path / "out",
             index_date="2025-04-01T00:30:00+01:00")
    assert not (tmp_path / "out" / "current").exists()


def test_arrow_date32_dates_of_birth_give_the_datetime64_caseload(baseline, tmp_path):
    reg, ev, act = _population()
    root = _write(tmp_path / "d32", reg, ev, act, dob_date32=True)
    assert pq.read_schema(root / "register.parquet").field("date_of_birth").type == pa.date32()
    cl, _ = _run(root, tmp_path / "out")
    pd.testing.assert_frame_equal(cl, baseline[0])


# ----------------------------------------------------------------- the library functions

# By hand, index date 2025-04-01, window (2024-04-01 00:00, 2025-04-01 00:00] on the wall
# clock of each column's own zone (BST = UTC+1 on all four dates):
#                              London column       UTC column (the same instants)
#   emergency 00:30 BST 1 Apr 2024   in  (100)     23:30 31 Mar 2024 -> out
#   emergency 01:30 BST 1 Apr 2024   in  (10)      00:30  1 Apr 2024 -> in
#   ae        00:30 BST 1 Apr 2025   out           23:30 31 Mar 2025 -> in  (1)
#   ae        01:30 BST 1 Apr 2025   out           00:30  1 Apr 2025 -> out
# London (and its naive clock readings): prior_cost 110, 2 emergency admissions, 0 A&E.
# A UTC column keeps UTC dates: 11, 1, 1 (what the UTC rule gave for London too).
_LONDON = pd.Series(pd.to_datetime(["2024-04-01 00:30", "2024-04-01 01:30",
                                    "2025-04-01 00:30", "2025-04-01 01:30"])
                    ).dt.tz_localize("Europe/London")
_WALL = (110.0, 2, 0)
_UTC = (11.0, 1, 1)
DATE_BACKENDS = {
    "numpy_london": (_LONDON, _WALL),
    "arrow_london": (_LONDON.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London"))),
                     _WALL),
    "naive_wall_clock": (_LONDON.dt.tz_localize(None), _WALL),
    "numpy_utc": (_LONDON.dt.tz_convert("UTC"), _UTC),
    "arrow_utc": (_LONDON.astype(pd.ArrowDtype(pa.timestamp("ns", tz="UTC"))), _UTC),
    "naive_utc": (_LONDON.dt.tz_convert("UTC").dt.tz_localize(None), _UTC),
}
_KINDS = ["emergency_admission", "emergency_admission", "ae", "ae"]
_COSTS = [100.0, 10.0, 1.0, 1000.0]


@pytest.mark.parametrize("backend", sorted(DATE_BACKENDS))
def test_patient_table_counts_the_window_on_local_wall_clock_time(backend):
    from pophealth.contracts.schema import validate_activity
    from pophealth.core.patients import patient_table

    dates, (cost, emergency, ae) = DATE_BACKENDS[backend]
    act = pd.DataFrame({"patient_id": [1, 1, 1, 1], "date": dates, "kind": _KINDS,
                        "cost": _COSTS})
    assert validate_activity(act) is act
    reg = pd.DataFrame({"patient_id": [1, 2], "age": [80, 30]})
    out = patient_table(reg, pd.DataFrame(index=pd.Index([1, 2], name="patient_id")), act,
                        index_date=INDEX_DATE)
    assert out["prior_cost"].tolist() == [cost, 0.0]
    assert out["prior_emergency_admissions"].tolist() == [emergency, 0]
    assert out["prior_ae_attendances"].tolist() == [ae, 0]


def test_patient_table_with_a_tz_aware_index_date_uses_its_wall_clock_time():
    from pophealth.core.patients import patient_table

    # index 00:30 BST on 1 April 2025 is 00:30 on the wall clock: window
    # (2024-04-01 00:30, 2025-04-01 00:30] takes rows 2 (10) and 3 (1) of the naive clock
    # readings -> 11. (UTC rule: index 23:30 on 31 March, rows 1 and 2 -> 110.)
    act = pd.DataFrame({"patient_id": [1, 1, 1, 1], "date": _LONDON.dt.tz_localize(None),
                        "kind": _KINDS, "cost": _COSTS})
    out = patient_table(pd.DataFrame({"patient_id": [1]}),
                        pd.DataFrame(index=pd.Index([1], name="patient_id")), act,
                        index_date=pd.Timestamp("2025-04-01 00:30", tz="Europe/London"))
    assert out["prior_cost"].tolist() == [11.0]
    assert out["prior_emergency_admissions"].tolist() == [1]
    assert out["prior_ae_attendances"].tolist() == [1]


@pytest.mark.parametrize("backend", ["numpy", "arrow"])
def test_summer_local_midnight_date_of_birth_keeps_its_day(backend):
    from pophealth.contracts.schema import validate_register
    from pophealth.core.ages import age_at

    # DOB 2000-07-01 00:00 BST (= 2000-06-30 23:00 UTC): on 1 July 2025 the 25th
    # birthday has been reached -> 25 (the UTC rule gave 24); on 30 June 2025 -> 24.
    dob = pd.Series(pd.to_datetime(["2000-07-01 00:00"])).dt.tz_localize("Europe/London")
    if backend == "arrow":
        dob = dob.astype(pd.ArrowDtype(pa.timestamp("us", tz="Europe/London")))
    assert age_at(dob, "2025-07-01").tolist() == [25.0]
    assert age_at(dob, "2025-06-30").tolist() == [24.0]
    reg = pd.DataFrame({"patient_id": [1], "sex": ["F"], "date_of_birth": dob,
                        "lsoa": "E01000001", "practice": "P1"})
    assert validate_register(reg, index_date="2000-07-01") is reg  # born on the index day


def _dob_backends():
    import datetime as dt

    days = [dt.date(1940, 4, 1), dt.date(1950, 4, 2), dt.date(1980, 1, 1)]
    return {
        "datetime64": pd.Series(pd.to_datetime(days)),
        "arrow_date32": pd.Series(pa.array(days, pa.date32()), dtype=pd.ArrowDtype(pa.date32())),
        "object_dates": pa.table({"d": pa.array(days, pa.date32())}).to_pandas()["d"],
    }


@pytest.mark.parametrize("backend", sorted(_dob_backends()))
def test_date32_dates_of_birth_are_accepted_and_score_like_datetime64(backend):
    from pophealth.contracts.schema import validate_register
    from pophealth.core.batch import score_patients

    dob = _dob_backends()[backend]
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "sex": ["F", "M", "F"],
                        "date_of_birth": dob, "lsoa": "E01000001", "practice": "P1"})
    assert validate_register(reg, index_date=INDEX_DATE) is reg
    ev = pd.DataFrame({"patient_id": [1, 2], "code": ["F00", "F00"], "code_system": "icd10",
                       "date": pd.to_datetime(["2025-01-01", "2025-01-01"])})
    # by hand on 2025-04-01: aged 85, 74 (birthday on 2 April) and 45, so 2 of 3 are under
    # the 75+ the HFRS was validated on; F00 weighs 7.1 in the HFRS
    lists = {"charlson": None, "elixhauser": None}
    with pytest.warns(DataQualityWarning, match=r"hfrs: 2 of 3 patient\(s\) are under 75"):
        scores = score_patients(reg, ev, index_date=INDEX_DATE, codelists=lists)
    with pytest.warns(DataQualityWarning):
        expected = score_patients(reg.assign(date_of_birth=_dob_backends()["datetime64"]), ev,
                                  index_date=INDEX_DATE, codelists=lists)
    pd.testing.assert_frame_equal(scores, expected)
    assert scores["hfrs"].tolist() == pytest.approx([7.1, 7.1, 0.0])
