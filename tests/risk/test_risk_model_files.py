"""Issue 13 item 2: model files load without executing code, and loaded models predict exactly.

The attacks: a ``model.pkl`` whose ``__reduce__`` creates a marker directory (in a
version-1 style file, beside a valid version-2 model, disguised as an array and as
``model.json``); a model state naming a class or attribute outside the allowed lists; a
tree whose child index points outside the tree (sklearn walks trees in compiled code
without bounds checks); a damaged array. Each must be refused with a one-line
ConfigError, and the marker must not exist afterwards.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from pophealth.contracts.exceptions import ConfigError, SchemaError
from pophealth.risk.model_io import _content_hash, load_model, read_model_metadata, save_model
from pophealth.risk.models import CoxRiskModel, RiskModel

PERIOD = ("2024-01-01", "2024-12-31")


class _Evil:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n = 1200
    X = pd.DataFrame({
        "age": rng.uniform(0, 100, n),
        "male": rng.integers(0, 2, n).astype(float),
        "imd_decile": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 11, n)),
        "prior_cost": rng.gamma(1.0, 400.0, n),
    }, index=pd.Index(np.arange(n) * 3 + 1, name="patient_id"))
    lp = -3 + 0.03 * X["age"] + 0.001 * X["prior_cost"]
    y = pd.Series(rng.random(n) < 1 / (1 + np.exp(-lp)), index=X.index)
    t = np.where(y, rng.integers(1, 366, n), 365.0)
    target = pd.DataFrame({"duration": t.astype(float), "event": y.to_numpy()}, index=X.index)
    return X, y, target


def _entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, entries: dict[str, bytes], *, rehash: bool = True):
    """Write a crafted model file; with ``rehash`` the attacker also fixes the checksum."""
    entries = dict(entries)
    if rehash and "metadata.json" in entries and "model.json" in entries:
        meta = json.loads(entries["metadata.json"])
        arrays = {n: b for n, b in entries.items() if n.startswith("arrays/")}
        meta["content_sha256"] = _content_hash(entries["model.json"], arrays)
        entries["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)
    return path


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    X, y, _ = data
    model = RiskModel(max_iter=20).fit(X, y)
    path = save_model(model, tmp_path_factory.mktemp("m") / "m.zip", training_period=PERIOD)
    return path, model


def _refused(path, marker, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load_model(path)
    assert not os.path.exists(marker)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------- pickles never run


def test_version_1_file_with_a_pickle_is_refused_unread(saved, tmp_path):
    path, _ = saved
    marker = str(tmp_path / "pwned")
    meta = json.loads(_entries(path)["metadata.json"])
    meta["format_version"] = 1
    crafted = _write(tmp_path / "v1.zip", {"metadata.json": json.dumps(meta).encode(),
                                           "model.pkl": pickle.dumps(_Evil(marker))})
    _refused(crafted, marker, "holds a pickle")
    with pytest.raises(ConfigError, match="holds a pickle"):
        read_model_metadata(crafted)
    assert not os.path.exists(marker)
    pickle.loads(pickle.dumps(_Evil(marker)))  # the payload is live: it does run when unpickled
    assert os.path.isdir(marker)


def test_pickle_beside_a_valid_model_is_refused(saved, tmp_path):
    path, _ = saved
    marker = str(tmp_path / "pwned")
    entries = {**_entries(path), "model.pkl": pickle.dumps(_Evil(marker))}
    _refused(_write(tmp_path / "extra.zip", entries), marker, "holds a pickle")
    renamed = {**_entries(path), "payload.bin": pickle.dumps(_Evil(marker))}
    _refused(_write(tmp_path / "renamed.zip", renamed), marker, "1 unexpected")


def test_pickle_disguised_as_array_or_model_json_is_refused(saved, tmp_path):
    path, _ = saved
    marker = str(tmp_path / "pwned")
    entries = _entries(path)
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    as_array = {**entries, "arrays/0000.npy": buf.getvalue()}
    _refused(_write(tmp_path / "array.zip", as_array), marker, "not valid")
    as_json = {**entries, "model.json": pickle.dumps(_Evil(marker))}
    _refused(_write(tmp_path / "json.zip", as_json), marker, "not valid")


# ------------------------------------------------------------------- crafted model states


def _edit_state(entries: dict[str, bytes], edit) -> dict[str, bytes]:
    state = json.loads(entries["model.json"])
    edit(state)
    return {**entries, "model.json": json.dumps(state).encode()}


@pytest.mark.parametrize("attack, match", [
    ("class", "outside the allowed list"),
    ("attribute", "outside its allowed list"),
    ("tag", "unknown"),
    ("object_dtype", "not numeric"),
])
def test_crafted_state_is_refused(saved, tmp_path, attack, match):
    path, _ = saved
    marker = str(tmp_path / "pwned")

    def edit(state):
        if attack == "class":
            state["attrs"]["estimator_"]["$object"] = "Popen"
        elif attack == "attribute":
            state["attrs"]["estimator_"]["attrs"]["__class__"] = 1
        elif attack == "tag":
            state["attrs"]["n_iter_"] = {"$eval": "__import__('os').mkdir('x')"}
        else:
            state["attrs"]["n_iter_"] = {"$dtype": "O"}

    _refused(_write(tmp_path / f"{attack}.zip", _edit_state(_entries(path), edit)), marker,
             match)


def _first_tree(entries: dict[str, bytes]) -> str:
    """The array entry holding the node table of the first boosting tree."""
    state = json.loads(entries["model.json"])
    hgb = state["attrs"]["estimator_"]["attrs"]["calibrated_classifiers_"][0]["params"]
    tree = hgb["estimator"]["attrs"]["_predictors"][0][0]
    return tree["params"]["nodes"]["$array"]


@pytest.mark.parametrize("field, value", [("left", 10**6), ("right", 0), ("feature_idx", 4),
                                          ("is_categorical", 1)])
def test_tree_pointing_outside_itself_is_refused(saved, tmp_path, field, value):
    path, _ = saved
    entries = _entries(path)
    name = _first_tree(entries)
    nodes = np.load(io.BytesIO(entries[name]), allow_pickle=False).copy()
    root_split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    nodes[field][root_split] = value
    buf = io.BytesIO()
    np.save(buf, nodes, allow_pickle=False)
    crafted = _write(tmp_path / "tree.zip", {**entries, name: buf.getvalue()})
    _refused(crafted, str(tmp_path / "none"), "tree")


@pytest.mark.parametrize("field, shift", [("num_threshold", 0.5), ("bin_threshold", 1)])
def test_tree_threshold_unlike_its_bin_is_refused(saved, tmp_path, field, shift):
    # scoring walks the binned table (risk.tree_scoring): a split whose float threshold
    # is not the bin threshold it names would score differently from sklearn, so refuse it
    path, _ = saved
    entries = _entries(path)
    name = _first_tree(entries)
    nodes = np.load(io.BytesIO(entries[name]), allow_pickle=False).copy()
    root_split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    nodes[field][root_split] += shift
    buf = io.BytesIO()
    np.save(buf, nodes, allow_pickle=False)
    crafted = _write(tmp_path / "bins.zip", {**entries, name: buf.getvalue()})
    _refused(crafted, str(tmp_path / "none"), "split thresholds differ from its bin thresholds")


def test_damaged_content_fails_its_checksum(saved, tmp_path):
    path, _ = saved
    entries = _entries(path)
    name = _first_tree(entries)
    nodes = np.load(io.BytesIO(entries[name]), allow_pickle=False).copy()
    nodes["value"] += 1.0
    buf = io.BytesIO()
    np.save(buf, nodes, allow_pickle=False)
    damaged = _write(tmp_path / "d.zip", {**entries, name: buf.getvalue()}, rehash=False)
    _refused(damaged, str(tmp_path / "none"), "does not match the checksum")


def test_metadata_checks_still_apply(saved, data, tmp_path):
    path, model = saved
    entries = _entries(path)
    meta = json.loads(entries["metadata.json"])
    meta["versions"]["scikit-learn"] = "0.0.1"
    old = _write(tmp_path / "old.zip", {**entries, "metadata.json": json.dumps(meta).encode()})
    with pytest.warns(UserWarning, match="saved with scikit-learn 0.0.1"):
        load_model(old)
    meta["format_version"] = 99
    future = _write(tmp_path / "f.zip", {**entries, "metadata.json": json.dumps(meta).encode()})
    with pytest.raises(ConfigError, match="format version 99 is not supported"):
        load_model(future)
    meta = json.loads(entries["metadata.json"])
    meta["features"] = ["age", "male", "imd_decile", "bmi"]
    renamed = _write(tmp_path / "r.zip", {**entries, "metadata.json": json.dumps(meta).encode()})
    with pytest.raises(SchemaError, match="features differ from the file's metadata"):
        load_model(renamed)
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['prior_cost'\]"):
        load_model(path, features=["age", "male", "imd_decile"])
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(data[0].fillna(0.0), data[1])
    with pytest.raises(ConfigError, match="only fitted RiskModel and CoxRiskModel"):
        save_model(other, tmp_path / "x.zip", training_period=PERIOD)


# ------------------------------------------------------------- exact predictions after load


@pytest.mark.parametrize("params", [
    {"method": "hgb", "calibration": "isotonic", "ensemble": True},
    {"method": "hgb", "calibration": "isotonic", "ensemble": False},
    {"method": "hgb", "calibration": None},
    {"method": "logistic", "calibration": "sigmoid", "ensemble": True},
    {"method": "logistic", "calibration": "sigmoid", "ensemble": False},
    {"method": "logistic", "calibration": "isotonic", "ensemble": True},
    {"method": "logistic", "calibration": None},
])
def test_loaded_risk_model_predicts_exactly(data, tmp_path, params):
    X, y, _ = data
    model = RiskModel(max_iter=25, **params).fit(X, y)
    path = save_model(model, tmp_path / "m.zip", training_period=PERIOD)
    loaded = load_model(path)
    assert type(loaded) is RiskModel and loaded.get_params() == model.get_params()
    new = X.sample(frac=1.0, random_state=1).assign(imd_decile=np.nan)  # unseen rows, all-NaN
    for table in (X, new):
        pd.testing.assert_series_equal(loaded.predict_risk(table), model.predict_risk(table),
                                       check_exact=True)
        np.testing.assert_array_equal(loaded.predict(table), model.predict(table))
    again = save_model(loaded, tmp_path / "again.zip", training_period=PERIOD)
    assert _entries(again)["model.json"] == _entries(path)["model.json"]


@pytest.mark.parametrize("ensemble", [True, False])
def test_loaded_sigmoid_gradient_boosting_predicts_to_the_exp_rounding(data, tmp_path,
                                                                        ensemble):
    # a loaded calibrated HGB model scores with numpy alone (risk.compiled_model); its
    # sigmoid's exp is numpy's, scipy's is libm's: they may differ by <= 2 ulp on AVX-512
    # CPUs (see tests/risk/test_compiled_model.py), so 4 ulp, not bit for bit
    X, y, _ = data
    model = RiskModel(max_iter=25, method="hgb", calibration="sigmoid",
                      ensemble=ensemble).fit(X, y)
    path = save_model(model, tmp_path / "m.zip", training_period=PERIOD)
    loaded = load_model(path)
    assert type(loaded) is RiskModel and loaded.get_params() == model.get_params()
    new = X.sample(frac=1.0, random_state=1).assign(imd_decile=np.nan)
    for table in (X, new):
        got, want = loaded.predict_risk(table), model.predict_risk(table)
        pd.testing.assert_index_equal(got.index, want.index)
        np.testing.assert_array_max_ulp(got.to_numpy(), want.to_numpy(), maxulp=4)
        np.testing.assert_array_equal(loaded.predict(table), model.predict(table))
    again = save_model(loaded, tmp_path / "again.zip", training_period=PERIOD)
    assert _entries(again)["model.json"] == _entries(path)["model.json"]


def test_loaded_cox_model_predicts_exactly(data, tmp_path):
    X, _, target = data
    cox = CoxRiskModel().fit(X, target)
    loaded = load_model(save_model(cox, tmp_path / "cox.zip", training_period=PERIOD))
    assert type(loaded) is CoxRiskModel and loaded.get_params() == cox.get_params()
    assert loaded.age_knots == (50, 65, 80)  # a tuple again, not a list
    for horizon in (30, 200, 365):
        pd.testing.assert_series_equal(loaded.predict_risk(X, horizon_days=horizon),
                                       cox.predict_risk(X, horizon_days=horizon),
                                       check_exact=True)
    assert loaded.score(X, target) == cox.score(X, target)
    assert not hasattr(loaded, "fitter_")
