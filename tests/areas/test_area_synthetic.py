"""The synthetic population's emergency admissions show the deprivation gradient it was
generated with (pophealth.synthetic: logit +0.35 per unit deprivation from -1 least to
+1 most deprived, plus deprivation-linked conditions and frailty).

Measured with the data below (100,000 patients, random_state=1, rates per 1,000,
10,000 repetitions, random_state=0): crude-rate SII -66.3 (95 % CI -72.9 to -59.8),
RII 0.457; ESP2013 DSR with log transform SII -69.5 (-76.7 to -62.6), RII 0.471.
Negative = rates fall from most (decile 1) to least deprived (decile 10).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pophealth import synthetic  # part of the library: a broken import must fail, not skip
from pophealth.areas import aggregate_by_area, crude_rate, dsr, sii
from pophealth.contracts.exceptions import DataQualityWarning

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def by_decile():
    pop = synthetic.make_population(100_000, random_state=1)
    patients = pop.register.join(pop.outcomes, on="patient_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        return aggregate_by_area(patients, by="imd_decile", numerator="emergency_admission")


def test_synthetic_emergency_admissions_have_deprivation_gradient(by_decile):
    rates = crude_rate(by_decile, multiplier=1000, disclosure_control=False)
    assert rates["area"].tolist() == [str(i) for i in range(1, 11)]
    value = rates["value"].to_numpy(dtype=float)
    assert value[0] > 1.5 * value[-1]
    assert np.corrcoef(np.arange(10), value)[0, 1] < -0.9
    result = sii(rates, random_state=0, repetitions=10_000).set_index("statistic")
    slope = result.loc["sii"]
    assert -90 < slope["value"] < -35  # per 1,000, most -> least deprived
    assert slope["upper_ci"] < 0  # the CI excludes no gradient
    assert 0.3 < result.loc["rii", "value"] < 0.7


def test_gradient_survives_age_standardisation(by_decile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        rates = dsr(by_decile, multiplier=1000, disclosure_control=False)
    result = sii(rates, random_state=0, repetitions=10_000, transform=True)
    slope = result.set_index("statistic").loc["sii"]
    assert slope["upper_ci"] < 0 and -95 < slope["value"] < -35
