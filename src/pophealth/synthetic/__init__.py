"""Synthetic: populations with ground truth for demos, tests and benchmarks.

Register, coded events, activity and next-year outcomes from a seeded generator
(``random_state`` is always explicit); NHS numbers only from the never-issued 999 range.
Imports :mod:`pophealth.core` and :mod:`pophealth.contracts` only.

* :mod:`~pophealth.synthetic.population` -- ``make_population`` (in memory),
  ``write_population`` (bucketed Parquet, streamed), ``realism_summary``.
* :mod:`~pophealth.synthetic.read` -- ``read_population``.
"""

from pophealth.synthetic.population import (
    SYNTHETIC_LISTS,
    Population,
    make_population,
    realism_summary,
    write_population,
)
from pophealth.synthetic.read import read_population

__all__ = [
    "SYNTHETIC_LISTS",
    "Population",
    "make_population",
    "read_population",
    "realism_summary",
    "write_population",
]
