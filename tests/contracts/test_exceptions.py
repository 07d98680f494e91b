"""The exception hierarchy in :mod:`pophealth.contracts.exceptions`."""

from __future__ import annotations

import pickle
import warnings

import pytest

import pophealth as ph
from pophealth.contracts import exceptions as exceptions
from pophealth.contracts.exceptions import (
    CodelistError,
    ConfigError,
    DataQualityWarning,
    PopHealthError,
    SchemaError,
)


@pytest.mark.parametrize("cls", [SchemaError, CodelistError, ConfigError])
def test_errors_are_pophealth_errors_and_value_errors(cls):
    assert issubclass(cls, PopHealthError)
    assert issubclass(cls, ValueError)
    with pytest.raises(ValueError, match="boom"):
        raise cls("boom")
    with pytest.raises(PopHealthError, match="boom"):
        raise cls("boom")


def test_base_is_a_plain_exception():
    assert issubclass(PopHealthError, Exception)
    assert not issubclass(PopHealthError, ValueError)


def test_error_classes_are_distinct():
    assert not issubclass(SchemaError, CodelistError)
    assert not issubclass(CodelistError, SchemaError)
    assert not issubclass(ConfigError, SchemaError)
    with pytest.raises(SchemaError):
        try:
            raise SchemaError("x")
        except (CodelistError, ConfigError):  # must not be caught here
            pytest.fail("SchemaError caught as another pophealth error")


def test_data_quality_warning_is_a_user_warning_not_an_error():
    assert issubclass(DataQualityWarning, UserWarning)
    assert not issubclass(DataQualityWarning, PopHealthError)
    with pytest.warns(DataQualityWarning, match="3 rows excluded"):
        warnings.warn("3 rows excluded", DataQualityWarning, stacklevel=1)


def test_schema_error_problems_default_and_copy():
    assert SchemaError("m").problems == []
    given = [{"table": "t", "column": "c", "rule": "r", "count": 1, "positions": [0]}]
    exc = SchemaError("m", given)
    given.append({"table": "t", "column": "d", "rule": "r", "count": 1, "positions": [1]})
    assert len(exc.problems) == 1  # the error keeps its own list
    assert str(exc) == "m"
    assert exc.args == ("m",)


def test_schema_error_pickles_with_its_problems():
    problems = [{"table": "t", "column": "c", "rule": "r", "count": 2, "positions": [0, 3]}]
    back = pickle.loads(pickle.dumps(SchemaError("msg", problems)))
    assert type(back) is SchemaError
    assert str(back) == "msg"
    assert back.problems == problems


def test_public_names_reexported():
    for name in exceptions.__all__:
        assert getattr(ph, name) is getattr(exceptions, name)
    assert set(exceptions.__all__) == {"PopHealthError", "SchemaError", "CodelistError",
                                       "ConfigError", "DataQualityWarning"}
