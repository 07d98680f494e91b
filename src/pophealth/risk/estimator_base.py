"""The scikit-learn estimator protocol for pophealth's models, without importing scikit-learn.

:class:`Estimator` gives a model class what :class:`sklearn.base.BaseEstimator` gives
(``get_params``, ``set_params``, a repr of the changed parameters, ``__sklearn_tags__``
and ``__sklearn_clone__`` for :func:`sklearn.base.clone`), so that defining or loading a
model does not import scikit-learn and scipy (about 2 s of a scheduled job that only
scores a saved model). scikit-learn is imported inside the methods that need it
(``set_params``, the tags) -- that is, only when scikit-learn itself is at work.
"""

from __future__ import annotations

import inspect

__all__ = ["Estimator"]


class Estimator:
    """Base class: parameters are the ``__init__`` arguments, stored under their names.

    Examples
    --------
    >>> class Model(Estimator):
    ...     def __init__(self, alpha: float = 1.0, kind: str = "a"):
    ...         self.alpha = alpha
    ...         self.kind = kind
    >>> m = Model(kind="b")
    >>> m, m.get_params()
    (Model(kind='b'), {'alpha': 1.0, 'kind': 'b'})
    """

    #: scikit-learn's estimator type tag (None, "classifier", ...).
    _estimator_type_tag: str | None = None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` argument names, sorted (as scikit-learn's)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [p for p in inspect.signature(init).parameters.values()
                  if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            raise RuntimeError(f"{cls.__name__}: estimators take no *args in __init__")
        return sorted(p.name for p in params)

    def get_params(self, deep: bool = True) -> dict:
        """Parameter name -> value (with ``name__sub`` entries of nested estimators)."""
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params):
        """Set parameters (scikit-learn's rules and errors); returns ``self``."""
        from sklearn.base import BaseEstimator

        return BaseEstimator.set_params(self, **params)

    def __sklearn_clone__(self):
        from sklearn.base import _clone_parametrized

        return _clone_parametrized(self)

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        classifier = self._estimator_type_tag == "classifier"
        return Tags(estimator_type=self._estimator_type_tag,
                    target_tags=TargetTags(required=classifier),
                    classifier_tags=ClassifierTags() if classifier else None)

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        changed = []
        for key, value in self.get_params(deep=False).items():
            default = sig[key].default
            same = (default is not inspect.Parameter.empty and type(default) is type(value)
                    and repr(default) == repr(value))
            if not same:
                changed.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"
