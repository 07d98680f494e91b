"""Save and load fitted risk models with their metadata.

A saved model is one zip file holding ``metadata.json`` (readable without unpickling,
see :func:`read_model_metadata`) and ``model.pkl``. The metadata records the library
versions, the model class and parameters, the feature list, the training period and
the performance figures. A loaded model keeps the metadata as ``metadata_`` and, like
any fitted pophealth model, refuses to score a table whose columns differ from its
feature list (:class:`~pophealth.contracts.exceptions.SchemaError` naming the columns).

Model files are pickles: load only files you trust (as for any scikit-learn model).
Writes are atomic (temporary file + ``os.replace``) and byte-identical for the same
model and metadata (fixed zip timestamps, sorted JSON keys; nothing reads the clock).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "read_model_metadata", "save_model"]

FORMAT = "pophealth-risk-model"
FORMAT_VERSION = 1
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def _versions() -> dict:
    import lifelines
    import numpy
    import sklearn

    from pophealth._version import __version__

    return {"pophealth": __version__, "scikit-learn": sklearn.__version__,
            "lifelines": lifelines.__version__, "numpy": numpy.__version__,
            "pandas": pd.__version__}


def _performance(performance) -> dict:
    if performance is None:
        return {}
    if isinstance(performance, pd.DataFrame):  # evaluate_risk output: keep the overall row
        row = performance.iloc[0]
        return {str(k): (None if pd.isna(v) else float(v)) for k, v in row.items()}
    if isinstance(performance, Mapping):
        return {str(k): (None if pd.isna(v) else float(v)) for k, v in performance.items()}
    raise ConfigError("save_model: 'performance' must be a mapping of metric -> number or an "
                      "evaluate_risk table")


def save_model(model, path, *, training_period, performance=None,
               description: str = "") -> Path:
    """Write a fitted model and its metadata to one file.

    Parameters
    ----------
    model : fitted RiskModel, CoxRiskModel or other estimator
        Must have been fitted on a DataFrame (it has ``feature_names_in_``), so scoring
        data can be checked against its features.
    path : str or Path
    training_period : (date-like, date-like)
        First and last dates the training data cover (e.g. start of the feature
        look-back and end of outcome follow-up).
    performance : mapping or DataFrame, optional
        Metric -> number, or an :func:`~pophealth.risk.evaluation.evaluate_risk` table (its
        overall row is kept).
    description : str, optional

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from pophealth.risk.models import RiskModel
    >>> X = pd.DataFrame({"age": np.arange(40.0), "male": np.arange(40) % 2 * 1.0})
    >>> model = RiskModel(method="logistic").fit(X, np.arange(40) % 3 == 0)
    >>> path = save_model(model, tempfile.mkdtemp() + "/m.zip",
    ...                   training_period=("2023-04-02", "2025-04-01"), performance={"auroc": 0.8})
    >>> meta = read_model_metadata(path)
    >>> meta["features"], meta["training_period"], meta["performance"]
    (['age', 'male'], ['2023-04-02', '2025-04-01'], {'auroc': 0.8})
    >>> loaded = load_model(path)
    >>> bool((loaded.predict_risk(X) == model.predict_risk(X)).all())
    True
    >>> loaded.predict_risk(X.rename(columns={"male": "sex"}))
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: RiskModel: The feature names should match those that were passed during fit; missing column(s) ['male']; unexpected column(s) ['sex']
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise ConfigError("save_model: the model has no 'feature_names_in_': fit it on a "
                          "DataFrame (e.g. make_features) so its features can be checked")
    start, end = (pd.Timestamp(d) for d in training_period)
    if start > end:
        raise ConfigError("save_model: 'training_period' start is after its end")
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "versions": _versions(),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": {k: repr(v) for k, v in sorted(model.get_params(deep=False).items())},
        "features": [str(c) for c in names],
        "training_period": [start.date().isoformat(), end.date().isoformat()],
        "performance": _performance(performance), "description": str(description),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("metadata.json", json.dumps(meta, indent=2, sort_keys=True).encode()),
                           ("model.pkl", pickle.dumps(model, protocol=5))):
            info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model_metadata(path) -> dict:
    """The metadata of a saved model, without unpickling the model."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ConfigError(f"read_model_metadata: not a pophealth model file ({type(exc).__name__})"
                          ) from exc
    if meta.get("format") != FORMAT:
        raise ConfigError("read_model_metadata: not a pophealth model file (format field)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"read_model_metadata: model file format version "
                          f"{meta.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    return meta


def load_model(path, *, features=None):
    """Load a model saved by :func:`save_model`; its metadata is set as ``metadata_``.

    Parameters
    ----------
    path : str or Path
    features : sequence of str or DataFrame, optional
        The columns you intend to score; when given, a mismatch with the model's feature
        list raises :class:`SchemaError` naming the missing and unexpected columns now
        rather than at scoring time.

    Warns
    -----
    UserWarning
        When the file was written with a different scikit-learn or lifelines version.
    """
    from pophealth.risk.models import check_feature_names

    meta = read_model_metadata(path)
    saved = meta["versions"]
    now = _versions()
    for lib in ("scikit-learn", "lifelines"):
        if saved.get(lib) != now[lib]:
            warnings.warn(f"load_model: saved with {lib} {saved.get(lib)}, running {now[lib]}; "
                          "check its performance before use", UserWarning, stacklevel=2)
    with zipfile.ZipFile(path) as zf:
        model = pickle.loads(zf.read("model.pkl"))
    fitted = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if fitted != meta["features"]:
        raise SchemaError("load_model: the model's features differ from the file's metadata")
    if features is not None:
        cols = features.columns if isinstance(features, pd.DataFrame) else list(features)
        check_feature_names(pd.DataFrame(columns=list(cols)), meta["features"], who="load_model")
    model.metadata_ = meta
    return model
