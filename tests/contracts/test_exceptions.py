"""The exception hierarchy in :mod:`pophealth.contracts.exceptions`."""

from __future__ import annotations

import pickle

import pandas as pd
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

# The hierarchy is the library's contract: callers may ``except ValueError`` or
# ``except PopHealthError``. Each case below is raised by a real library call (raising
# and catching a class by hand would only test Python itself).
EVENT = pd.DataFrame({"patient_id": [1], "code": ["R26"], "code_system": ["icd10"],
                      "date": pd.to_datetime(["2025-01-01"])})
RAISERS = {
    SchemaError: lambda: ph.validate_register(pd.DataFrame({"patient_id": [1, 1]})),
    CodelistError: lambda: ph.load_codelist("no_such_list"),
    ConfigError: lambda: ph.flag_conditions(EVENT, "charlson_quan2005_icd10",
                                            register=pd.DataFrame({"patient_id": [1]}),
                                            index_date="2025-04-01", lookback_days=0),
}


@pytest.mark.parametrize("cls", [SchemaError, CodelistError, ConfigError],
                         ids=lambda c: c.__name__)
def test_library_errors_are_pophealth_errors_and_value_errors(cls):
    with pytest.raises(ValueError) as caught:
        RAISERS[cls]()
    assert type(caught.value) is cls
    assert isinstance(caught.value, PopHealthError)
    others = [c for c in RAISERS if c is not cls]
    assert not isinstance(caught.value, tuple(others))  # the three are distinct


def test_base_is_not_a_value_error():
    # a pophealth error that is not about a bad value need not be caught as one
    assert PopHealthError.__mro__[1:] == (Exception, BaseException, object)


def test_data_quality_warning_from_the_library_is_a_user_warning_not_an_error():
    with pytest.warns(UserWarning) as caught:
        ph.hfrs(EVENT, register=pd.DataFrame({"patient_id": [1]}), index_date="2025-04-01")
    assert [type(w.message) for w in caught] == [DataQualityWarning]
    assert not issubclass(DataQualityWarning, PopHealthError)


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
