"""Issue 14 item 2: the vectorised make_features against a slow, obviously correct reference.

The reference walks the activity table row by row in Python (date window, kind, cost,
stay) and looks each register patient's flags up one by one. The fast path's activity
checks (:func:`~pophealth.risk.feature_inputs._plain_activity`) must accept only what the
contract (:func:`~pophealth.contracts.schema.validate_activity`) accepts, and the
features must not depend on the row order of the register or the activity.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pophealth.contracts.exceptions import SchemaError
from pophealth.contracts.schema import validate_activity
from pophealth.risk import features
from pophealth.risk.feature_inputs import _plain_activity
from pophealth.risk.features import (
    BASE_FEATURES,
    UTILISATION_KINDS,
    _float64,
    _position_map,
    make_features,
)
from pophealth.synthetic import make_population

SENTINEL = 987654.25  # a value that must never appear in a message


def _reference(register, flags, activity, index_date, lookback_days=365) -> pd.DataFrame:
    """Row-by-row features: the definition in make_features' docstring, nothing clever."""
    index = pd.Timestamp(index_date)
    since = index - pd.Timedelta(days=lookback_days)
    feature_of = {k: name for name, kinds in UTILISATION_KINDS.items() for k in kinds}
    rows = {}
    for r in register.itertuples(index=False):
        sex = str(r.sex).strip().upper() if isinstance(r.sex, str) else None
        rows[r.patient_id] = {"age": float(r.age),
                              "male": 1.0 if sex == "M" else 0.0 if sex == "F" else np.nan,
                              "imd_decile": float(r.imd_decile),
                              **{name: 0.0 for name in UTILISATION_KINDS},
                              "prior_bed_days": 0.0, "prior_cost": 0.0}
    for a in activity.itertuples(index=False):
        if a.patient_id not in rows or not since < pd.Timestamp(a.date) <= index:
            continue
        f = rows[a.patient_id]
        if a.kind in feature_of:
            f[feature_of[a.kind]] += 1
        if a.kind in ("emergency_admission", "elective_admission") and not np.isnan(
                a.length_of_stay):
            f["prior_bed_days"] += a.length_of_stay
        f["prior_cost"] += a.cost
    table = pd.DataFrame.from_dict(rows, orient="index")[list(BASE_FEATURES)]
    for c in flags.columns:
        if flags[c].dtype == bool or pd.api.types.is_numeric_dtype(flags[c]):
            table[c] = [float(flags.at[pid, c]) for pid in table.index]
    table.index.name = "patient_id"
    return table


def _population(seed: int, n: int = 1500):
    pop = make_population(n, random_state=seed)
    rng = np.random.default_rng(seed)
    act = pop.activity.copy()
    # every feature exercised: other kinds, stays missing, dates out of the window,
    # patients not on the register
    kind = act["kind"].to_numpy(dtype=object).copy()
    swap = rng.random(len(act)) < 0.1
    kind[swap] = rng.choice(["community", "mental_health", "other"], swap.sum())
    act["kind"] = pd.Categorical(kind)
    act["length_of_stay"] = act["length_of_stay"].astype(float)
    act.loc[rng.random(len(act)) < 0.05, "length_of_stay"] = np.nan
    act.loc[rng.random(len(act)) < 0.05, "date"] = pd.Timestamp(pop.index_date) + pd.Timedelta(
        days=3)
    # the window's edges: the index date itself counts, 365 days before it does not; one
    # nanosecond after the index date does not count, one after the start does
    edge = rng.choice(len(act), 60, replace=False)
    index, tick = pd.Timestamp(pop.index_date), pd.Timedelta(1, "ns")
    act.loc[act.index[edge[:20]], "date"] = index
    act.loc[act.index[edge[20:40]], "date"] = index - pd.Timedelta(days=365)
    act.loc[act.index[edge[40:50]], "date"] = index + tick
    act.loc[act.index[edge[50:]], "date"] = index - pd.Timedelta(days=365) + tick
    stranger = rng.random(len(act)) < 0.02
    act.loc[stranger, "patient_id"] = act["patient_id"].max() + 1 + np.arange(stranger.sum())
    reg = pop.register[["patient_id", "sex", "age", "imd_decile"]].copy()
    flags = pd.DataFrame({"heart_failure": rng.random(n) < 0.1, "efi": rng.random(n),
                          "n_conditions": rng.integers(0, 6, n), "band": ["x"] * n},
                         index=pd.Index(reg["patient_id"].to_numpy(), name="patient_id"))
    flags.loc[flags.index[::7], "efi"] = np.nan
    return reg, flags, act, pop.index_date


@pytest.mark.parametrize("variant", ["plain", "sparse_ids", "object_kind", "us_dates",
                                     "flags_shuffled_superset", "register_shuffled",
                                     "ids_with_gaps", "negative_ids", "int32_activity_ids",
                                     "uint64_ids", "int_cost_and_stays", "unpickled"])
def test_make_features_equals_row_by_row_reference(variant):
    reg, flags, act, index_date = _population(5)
    # make_population's ids are 0..n-1 in order (read as an offset); the variants below
    # take the dense lookup table (shuffled, gaps, negative) or the hash table (sparse)
    if variant == "sparse_ids":  # ids far apart: the hash lookup instead of the dense table
        reg["patient_id"] = reg["patient_id"] * 1_000_003
        act["patient_id"] = act["patient_id"] * 1_000_003
        flags.index = pd.Index(flags.index * 1_000_003, name="patient_id")
    if variant == "register_shuffled":  # every id from 0 to n-1, not in order
        reg = reg.sample(frac=1.0, random_state=2)
    if variant in ("ids_with_gaps", "negative_ids"):
        shift = -1000 if variant == "negative_ids" else 0
        reg["patient_id"] = reg["patient_id"] * 3 + shift
        act["patient_id"] = act["patient_id"] * 3 + shift
        flags.index = pd.Index(flags.index * 3 + shift, name="patient_id")
    if variant == "int32_activity_ids":
        act["patient_id"] = act["patient_id"].astype(np.int32)
    if variant == "uint64_ids":
        reg["patient_id"] = reg["patient_id"].astype(np.uint64)
        act["patient_id"] = act["patient_id"].astype(np.uint64)
        flags.index = pd.Index(flags.index.to_numpy().astype(np.uint64), name="patient_id")
    if variant == "int_cost_and_stays":  # plain integer columns, used as they are
        act["cost"] = np.round(act["cost"]).astype(np.int64)
        act["length_of_stay"] = act["length_of_stay"].fillna(0).astype(np.int64)
    if variant == "unpickled":  # numpy dtype objects equal to, not the same as, the builtins
        reg, flags, act = pickle.loads(pickle.dumps((reg, flags, act)))
    if variant == "object_kind":  # not the plain dtypes: the contract validates
        act["kind"] = act["kind"].astype(object)
        # that path reads dates in microseconds (as_datetime64): whole microseconds here
        act["date"] = act["date"].astype("M8[us]")
    if variant == "us_dates":
        act["date"] = act["date"].astype("M8[us]")
    if variant == "flags_shuffled_superset":
        extra = pd.DataFrame({"heart_failure": [True], "efi": [0.5], "n_conditions": [9],
                              "band": ["y"]}, index=pd.Index([-1], name="patient_id"))
        flags = pd.concat([flags, extra]).sample(frac=1.0, random_state=1)
    got = make_features(reg, flags, act, index_date=index_date)
    ref = _reference(reg, flags, act, index_date)
    assert list(got.columns) == list(ref.columns)
    assert got.index.equals(ref.index)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=0)
    # the crafted rows really happened: some contacts dropped, every count used
    assert all(got[name].sum() > 0 for name in UTILISATION_KINDS)
    assert got["prior_bed_days"].sum() > 0


@settings(max_examples=15, deadline=None)
@given(block=st.integers(1, 5000), seed=st.integers(0, 3))
def test_block_size_changes_no_bit_of_the_features(block, seed):
    """The activity is read in blocks: any block size gives the reference's float sums
    exactly (each patient's costs and stays added in row order, as the reference does)."""
    reg, flags, act, index_date = _population(seed, n=300)
    rng = np.random.default_rng(seed)
    act["cost"] = np.round(rng.random(len(act)) * 1000, 2)  # sums depend on the order
    act = act.iloc[rng.permutation(len(act))]
    ref = _reference(reg, flags, act, index_date)
    old = features._BLOCK_ROWS
    try:
        features._BLOCK_ROWS = block
        got = make_features(reg, flags, act, index_date=index_date)
    finally:
        features._BLOCK_ROWS = old
    assert len(act) > block or block > 1000  # several blocks in most examples
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())


def test_float64_gives_numpys_own_dtype_object():
    # an unpickled array carries an equal but distinct dtype object, which sends
    # np.add.at down its slow general path; _float64 hands back the builtin one
    unpickled = pickle.loads(pickle.dumps(np.array([1.5, 2.0])))
    assert unpickled.dtype == np.float64 and unpickled.dtype is not np.dtype(np.float64)
    got = _float64(unpickled)
    assert got.dtype is np.dtype(np.float64) and np.shares_memory(got, unpickled)
    ints = _float64(np.array([3, 4], dtype=np.int64))
    assert ints.dtype is np.dtype(np.float64) and ints.tolist() == [3.0, 4.0]
    big_endian = _float64(np.array([1.5, -2.0], dtype=">f8"))
    assert big_endian.dtype is np.dtype(np.float64) and big_endian.tolist() == [1.5, -2.0]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_features_do_not_depend_on_row_order(seed):
    reg, flags, act, index_date = _population(7, n=400)
    base = make_features(reg, flags, act, index_date=index_date)
    rng = np.random.default_rng(seed)
    reg2 = reg.iloc[rng.permutation(len(reg))]
    act2 = act.iloc[rng.permutation(len(act))]
    got = make_features(reg2, flags, act2, index_date=index_date)
    assert got.index.equals(pd.Index(reg2["patient_id"].to_numpy(), name="patient_id"))
    np.testing.assert_allclose(got.loc[base.index].to_numpy(), base.to_numpy(),
                               rtol=1e-12, atol=0)


def test_make_features_is_one_float_block_without_copies():
    reg, flags, act, index_date = _population(3, n=300)
    X = make_features(reg, flags, act, index_date=index_date)
    values = X.to_numpy()
    assert values.dtype == np.float64 and values.flags.f_contiguous
    assert np.shares_memory(values, X.to_numpy())  # a view of the one block, not a copy


def _act(**cols):
    base = {"patient_id": [10, 10, 20, 30],
            "date": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-03-02"]),
            "kind": pd.Categorical(["ae", "gp", "gp", "emergency_admission"]),
            "cost": [150.0, 40.0, 40.0, 2000.0], "length_of_stay": [0.0, 0.0, 0.0, 3.0]}
    return pd.DataFrame({**base, **cols})


NAT = pd.NaT
# plain dtypes, one broken rule each: (activity, rule, count, positions), counted by hand
BROKEN = {
    "cost missing": (_act(cost=[150.0, np.nan, 40.0, np.nan]), "not_null", 2, [1, 3]),
    "cost infinite": (_act(cost=[150.0, np.inf, 40.0, 2000.0]), "finite", 1, [1]),
    "cost negative": (_act(cost=[150.0, -SENTINEL, 40.0, 2000.0]), "cost_non_negative", 1, [1]),
    "stay negative": (_act(length_of_stay=[0.0, 0.0, 0.0, -SENTINEL]), "non_negative", 1, [3]),
    "stay infinite": (_act(length_of_stay=[0.0, np.inf, 0.0, 3.0]), "finite", 1, [1]),
    "date missing": (_act(date=pd.to_datetime(["2025-01-01", NAT, NAT, "2025-03-02"])),
                     "not_null", 2, [1, 2]),
    "kind missing": (_act(kind=pd.Categorical(["ae", None, "gp", "gp"])), "not_null", 1, [1]),
    "kind not allowed": (_act(kind=pd.Categorical(["ae", "gp", "xray", "xray"])),
                         "activity_kind", 2, [2, 3]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_fast_checks_refuse_what_the_contract_refuses(case):
    act, rule, count, positions = BROKEN[case]
    assert _plain_activity(act) is None  # not proved valid...
    reg = pd.DataFrame({"patient_id": [10, 20, 30], "sex": ["M", "F", "F"], "age": [80, 50, 20]})
    with pytest.raises(SchemaError) as err:
        make_features(reg, None, act, index_date="2025-04-01")
    with pytest.raises(SchemaError) as contract:  # ...and refused with the contract's words
        validate_activity(act)
    assert err.value.problems == contract.value.problems
    (problem,) = err.value.problems
    assert (problem["rule"], problem["count"], list(problem["positions"])) == (
        rule, count, positions)
    assert str(SENTINEL) not in str(err.value) and "987654" not in str(err.value)
    assert "\n" not in str(err.value)


def test_fast_checks_accept_plain_valid_tables_and_unused_categories():
    act = _act()
    assert _plain_activity(act) is not None
    # a category outside the allowed kinds that no row uses: the contract accepts it too
    act2 = _act(kind=pd.Categorical(["ae", "gp", "gp", "ae"],
                                    categories=["ae", "gp", "xray"]))
    validate_activity(act2)
    reg = pd.DataFrame({"patient_id": [10, 20, 30], "sex": ["M", "F", "F"], "age": [80, 50, 20]})
    X = make_features(reg, None, act2, index_date="2025-04-01")
    assert X["prior_ae_attendances"].tolist() == [1.0, 0.0, 1.0]
    assert X["prior_gp_contacts"].tolist() == [1.0, 1.0, 0.0]


def _positions(ids: pd.Index, patient_id: np.ndarray) -> np.ndarray:
    """Register position of every activity row by ``features._position_map``; every
    position off the register (the map returns anything outside ``[0, n)``) as ``n``."""
    pos = _position_map(ids, patient_id.dtype)(patient_id)
    pos[(pos < 0) | (pos >= len(ids))] = len(ids)
    return pos


@pytest.mark.parametrize("ids, pid", [
    ([5, 3, 9], [9, 3, 4, -1, 10, 5, 2**40]),  # dense table: out of range both sides
    ([-7, 0, 2], [-7, -8, 2, 3, 0]),  # negative ids
    ([10**12, 3], [3, 10**12, 4]),  # sparse: the hash lookup
    ([], [1, 2]),
    ([4, 5, 6, 7], [3, 4, 7, 8, -4, 6]),  # sorted and consecutive: an offset
    ([7, 5, 6, 4], [3, 4, 7, 8, -4, 6]),  # consecutive, not sorted: the table
])
def test_positions_equal_the_index_lookup(ids, pid):
    index = pd.Index(np.array(ids, dtype=np.int64))
    pid = np.array(pid, dtype=np.int64)
    expected = index.get_indexer(pid)
    expected[expected < 0] = len(ids)  # off the register: the discarded bin
    np.testing.assert_array_equal(_positions(index, pid), expected)
    np.testing.assert_array_equal(_positions(index, pid.astype(np.uint64) if (pid >= 0).all()
                                             else pid), expected)


def test_unsigned_ids_beyond_int64_never_meet_negative_register_ids():
    # 2**64 - 7 read as int64 would be -7, a register id: it must stay off the register
    index = pd.Index(np.array([-7, 0, 2], dtype=np.int64))
    pid = np.array([2**64 - 7, 0, 2, 2**63], dtype=np.uint64)
    np.testing.assert_array_equal(_positions(index, pid), [3, 1, 2, 3])


@pytest.mark.parametrize("shuffled", [False, True])
def test_nullable_and_numpy_flag_columns_by_hand(shuffled):
    reg = pd.DataFrame({"patient_id": [1, 2, 3], "sex": ["M", "F", "F"], "age": [80, 50, 20]})
    flags = pd.DataFrame({"copd": pd.array([True, None, False], dtype="boolean"),
                          "n": pd.array([2, None, 0], dtype="Int64"),
                          "asthma": np.array([False, True, True]),
                          "efi": np.array([0.25, np.nan, 0.0])},
                         index=pd.Index([1, 2, 3], name="patient_id"))
    if shuffled:  # not in register order: each column taken through the positions
        flags = flags.iloc[[2, 0, 1]]
    act = _act().iloc[:0]
    X = make_features(reg, flags, act, index_date="2025-04-01")
    expected = pd.DataFrame({"copd": [1.0, np.nan, 0.0], "n": [2.0, np.nan, 0.0],
                             "asthma": [0.0, 1.0, 1.0], "efi": [0.25, np.nan, 0.0]},
                            index=pd.Index([1, 2, 3], name="patient_id"))
    pd.testing.assert_frame_equal(X[list(expected.columns)], expected)
