"""Save and load fitted risk models with their metadata.

A saved model is one zip file holding ``metadata.json`` (see :func:`read_model_metadata`),
``model.json`` (the fitted model as plain data, see :mod:`~pophealth.risk.model_state`)
and ``arrays/NNNN.npy`` (its numeric arrays). The metadata records the library versions,
the model class and parameters, the feature list, the training period, the performance
figures and a SHA-256 of the model's content. A loaded model keeps the metadata as
``metadata_`` and, like any fitted pophealth model, refuses to score a table whose
columns differ from its feature list (:class:`~pophealth.contracts.exceptions.SchemaError`
naming the columns).

Loading cannot execute code: there is no pickle. JSON is parsed, arrays are read with
``numpy.load(..., allow_pickle=False)`` (numeric dtypes only), and only the classes in
:data:`~pophealth.risk.model_state.ALLOWED` are rebuilt, through their constructors and a
fixed list of attributes. A file holding anything else -- such as the ``model.pkl`` of
format version 1 -- is refused before anything in it is read. The checksum catches a
damaged or partly edited file; it is not a signature (whoever can write the file can
recompute it), so a file from an untrusted source can still hold a *wrong* model: check
where it came from, and its performance, before use.

Writes are atomic (temporary file + ``os.replace``) and byte-identical for the same
model and metadata (fixed zip timestamps, sorted JSON keys; nothing reads the clock).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pophealth.contracts.exceptions import ConfigError, SchemaError

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "read_model_metadata", "save_model"]

FORMAT = "pophealth-risk-model"
FORMAT_VERSION = 2
_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_ARRAY_ENTRY = re.compile(r"^arrays/[0-9]{4,9}\.npy$")
#: Largest total uncompressed size accepted (a guard against zip bombs).
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3


def _content_hash(model_json: bytes, arrays: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for name, data in [("model.json", model_json), *sorted(arrays.items())]:
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _installed(dist: str) -> str | None:
    """The installed version of a distribution, read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


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
    model : fitted RiskModel or CoxRiskModel
        Must have been fitted on a DataFrame (it has ``feature_names_in_``), so scoring
        data can be checked against its features. Other estimators cannot be stored in
        the code-free format (:class:`ConfigError`).
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
    from pophealth.risk.model_state import to_state

    state, arrays = to_state(model)
    model_json = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    array_bytes = {name: _npy_bytes(a) for name, a in arrays.items()}
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "versions": _versions(),
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": {k: repr(v) for k, v in sorted(model.get_params(deep=False).items())},
        "features": [str(c) for c in names],
        "training_period": [start.date().isoformat(), end.date().isoformat()],
        "performance": _performance(performance), "description": str(description),
        "content_sha256": _content_hash(model_json, array_bytes),
    }
    buf = io.BytesIO()
    entries = [("metadata.json", json.dumps(meta, indent=2, sort_keys=True).encode()),
               ("model.json", model_json), *sorted(array_bytes.items())]
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
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


def _check_entries(zf: zipfile.ZipFile, who: str) -> None:
    """Refuse a zip holding anything but the format's entries (a pickle above all)."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if any(n.lower().endswith((".pkl", ".pickle", ".joblib")) for n in names):
        raise ConfigError(f"{who}: the model file holds a pickle, which could run code when "
                          "loaded; refused (format version 1 files must be re-saved with "
                          "this version from a trusted session)")
    strange = [n for n in names if n not in ("metadata.json", "model.json")
               and not _ARRAY_ENTRY.match(n)]
    if strange or len(set(names)) != len(names):
        raise ConfigError(f"{who}: the model file holds {len(strange)} unexpected and "
                          f"{len(names) - len(set(names))} duplicated entr(ies); refused")
    if sum(i.file_size for i in infos) > MAX_UNCOMPRESSED_BYTES:
        raise ConfigError(f"{who}: the model file unpacks to more than "
                          f"{MAX_UNCOMPRESSED_BYTES} bytes; refused")


def read_model_metadata(path) -> dict:
    """The metadata of a saved model, read without building the model.

    Raises
    ------
    ConfigError
        Not a zip or not a pophealth model file, an unsupported format version, or a
        file holding entries outside the format (e.g. a pickle).

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from pophealth.risk.model_io import read_model_metadata, save_model
    >>> from pophealth.risk.models import RiskModel
    >>> X = pd.DataFrame({"age": np.arange(40.0), "male": np.arange(40) % 2 * 1.0})
    >>> model = RiskModel(method="logistic").fit(X, np.arange(40) % 3 == 0)
    >>> path = save_model(model, tempfile.mkdtemp() + "/m.zip", description="demo",
    ...                   training_period=("2023-04-02", "2025-04-01"))
    >>> meta = read_model_metadata(path)
    >>> meta["features"], meta["description"]
    (['age', 'male'], 'demo')
    >>> read_model_metadata(tempfile.mkstemp(suffix=".zip")[1])
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.ConfigError: ...
    """
    try:
        with zipfile.ZipFile(path) as zf:
            _check_entries(zf, "read_model_metadata")
            meta = json.loads(zf.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"read_model_metadata: not a pophealth model file ({type(exc).__name__})"
                          ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError("read_model_metadata: not a pophealth model file (format field)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"read_model_metadata: model file format version "
                          f"{meta.get('format_version')!r} is not supported (expected "
                          f"{FORMAT_VERSION})")
    return meta


def _read_state(path, meta: dict):
    with zipfile.ZipFile(path) as zf:
        model_json = zf.read("model.json")
        raw = {n: zf.read(n) for n in zf.namelist() if _ARRAY_ENTRY.match(n)}
    if _content_hash(model_json, raw) != meta.get("content_sha256"):
        raise ConfigError("load_model: the model's content does not match the checksum in its "
                          "metadata (damaged or edited file); refused")
    try:
        state = json.loads(model_json)
        arrays = {n: np.load(io.BytesIO(b), allow_pickle=False) for n, b in raw.items()}
    except (ValueError, RecursionError, EOFError, OSError) as exc:
        raise ConfigError(f"load_model: the model file is not valid ({type(exc).__name__} "
                          "reading its content)") from None
    return state, arrays


def _build(state, arrays):
    """The model of a state: a calibrated gradient-boosting RiskModel scored from its arrays
    (:mod:`~pophealth.risk.compiled_model`, no scikit-learn), any other through
    scikit-learn (:func:`~pophealth.risk.model_state.from_state`)."""
    from pophealth.risk.compiled_model import compile_state
    from pophealth.risk.models import RiskModel

    compiled = compile_state(state, arrays, tuple(RiskModel._get_param_names()))
    if compiled is None:
        from pophealth.risk.model_state import from_state

        return from_state(state, arrays)
    params, attrs, scorer = compiled
    model = RiskModel(**params)
    for k, v in attrs.items():
        setattr(model, k, v)
    model._compiled = scorer  # predict_proba scores with it
    model._state = (state, arrays)  # estimator_ is built from it if asked for
    return model


def load_model(path, *, features=None):
    """Load a model saved by :func:`save_model`; its metadata is set as ``metadata_``.

    Nothing in the file is executed (no pickle; see the module docstring). Loaded models
    predict exactly as the saved ones. A calibrated gradient-boosting ``RiskModel`` (the
    default) is loaded and scored without importing scikit-learn or scipy (see
    :mod:`~pophealth.risk.compiled_model`); its scikit-learn ``estimator_`` is built on
    first use. A :class:`CoxRiskModel` comes back without ``fitter_`` (the lifelines
    object), which scoring does not use.

    Parameters
    ----------
    path : str or Path
    features : sequence of str or DataFrame, optional
        The columns you intend to score; when given, a mismatch with the model's feature
        list raises :class:`SchemaError` naming the missing and unexpected columns now
        rather than at scoring time.

    Raises
    ------
    ConfigError
        The file holds a pickle or any entry outside the format, fails its checksum,
        names a class outside the allowed list, or is otherwise not a model file.
    SchemaError
        ``features`` differ from the model's.

    Warns
    -----
    UserWarning
        When the file was written with a different scikit-learn or lifelines version.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from pophealth.risk.model_io import load_model, save_model
    >>> from pophealth.risk.models import RiskModel
    >>> X = pd.DataFrame({"age": np.arange(40.0), "male": np.arange(40) % 2 * 1.0})
    >>> model = RiskModel(method="logistic").fit(X, np.arange(40) % 3 == 0)
    >>> path = save_model(model, tempfile.mkdtemp() + "/m.zip",
    ...                   training_period=("2023-04-02", "2025-04-01"))
    >>> loaded = load_model(path, features=["age", "male"])
    >>> bool((loaded.predict_risk(X) == model.predict_risk(X)).all())
    True
    >>> load_model(path, features=["age", "sex"])
    Traceback (most recent call last):
    ...
    pophealth.contracts.exceptions.SchemaError: ...missing column(s) ['male']; unexpected column(s) ['sex']
    """
    from pophealth.risk.models import check_feature_names

    meta = read_model_metadata(path)
    saved = meta["versions"]
    for lib in ("scikit-learn", "lifelines"):  # versions read without importing either
        now = _installed(lib)
        if saved.get(lib) != now:
            warnings.warn(f"load_model: saved with {lib} {saved.get(lib)}, running {now}; "
                          "check its performance before use", UserWarning, stacklevel=2)
    try:
        model = _build(*_read_state(path, meta))
    except KeyError:
        raise ConfigError("load_model: not a pophealth model file (no model.json)") from None
    fitted = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if fitted != meta["features"]:
        raise SchemaError("load_model: the model's features differ from the file's metadata")
    if features is not None:
        cols = features.columns if isinstance(features, pd.DataFrame) else list(features)
        check_feature_names(pd.DataFrame(columns=list(cols)), meta["features"], who="load_model")
    model.metadata_ = meta
    return model
