"""Areas: counts by area and strata, rates with intervals, standardisation, inequality.

Fingertips (PHE/OHID) methods for LSOAs, PCNs, practices and IMD deciles, with
disclosure control on by default. Imports :mod:`pophealth.core` and
:mod:`pophealth.contracts` only.

============================== ==============================================
:func:`aggregate_by_area`      register-based counts by area and strata
:func:`crude_rate`             events per population, exact Poisson / Byar
:func:`proportion`             Wilson score
:func:`dsr`                    ESP2013 direct standardisation, Dobson limits
:func:`isr`                    indirect standardisation (observed/expected)
:func:`sii`                    slope and relative index of inequality
:func:`suppress`               disclosure control (1-7 suppressed, round to 5)
:func:`funnel_limits`          funnel-plot control limits
:func:`ci_long`                one row per confidence level
:func:`age_band`, :func:`esp2013`  ESP2013 age bands and weights
============================== ==============================================

Counts from :func:`aggregate_by_area` are *not* disclosure-controlled (they feed the
statistics); the statistics control their published counts by default.
"""

from pophealth.areas.agebands import ESP2013_BANDS, UNKNOWN, age_band, esp2013
from pophealth.areas.aggregate import aggregate_by_area
from pophealth.areas.disclosure import suppress
from pophealth.areas.funnels import funnel_limits
from pophealth.areas.inequality import sii
from pophealth.areas.intervals import ci_long
from pophealth.areas.rates import crude_rate, proportion
from pophealth.areas.standardised import dsr, isr

__all__ = [
    "ESP2013_BANDS",
    "UNKNOWN",
    "age_band",
    "aggregate_by_area",
    "ci_long",
    "crude_rate",
    "dsr",
    "esp2013",
    "funnel_limits",
    "isr",
    "proportion",
    "sii",
    "suppress",
]
