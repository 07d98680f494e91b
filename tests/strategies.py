"""Boundary-aware hypothesis strategies shared by the property tests (issue 16, item 2).

Uniform draws almost never land on the one day, age or count where an off-by-one
hides (a property test that draws days from -800..30 hits day -365 with probability
1/831 per event). Every strategy here mixes ordinary draws with the edges themselves,
each edge +-1, so that ``<=`` versus ``<`` is decided in every run, not by luck.

Edges (each derived from the library's documented rules, not from its code):

* **look-back windows** -- every window the library applies:
  ``flag_conditions(lookback_days=)`` (any positive int; HFRS uses 730),
  Bridges to Health rule windows ``24m`` = 730 and ``12m`` = 365 days,
  ``patient_table`` utilisation 365, ``segments.utilisation_features(days=365)``,
  ``risk.make_features(lookback_days=365)``. A window of ``L`` days keeps
  ``index_date - L < date <= index_date``; the edges are offsets ``-L - 1, -L, -L + 1``
  and ``-1, 0, +1`` days from ``index_date``.
* **ages** -- ESP2013 five-year band edges (``5k - 1``, ``5k``, 89/90), the HFRS
  validation age 74/75 and the eFI / Bridges to Health frailty gate 64/65, the
  pregnancy gate 9/10 and 55/56, the infant gate 0/1.
* **counts** -- NHS Digital disclosure control: 0 stays 0, 1-7 suppressed, others
  rounded to 5 half up. ``count_lists`` always contains every count 0-20 (so the
  threshold 7/8 and the first rounding edges 12/13, 17/18 are in every example), plus
  draws around the threshold (+-1) and on rounding edges ``5k + 2`` / ``5k + 3``.
* **fractions** -- values that are not exact in binary, so that ``fraction * n``
  lands a hair above an integer (0.07 * 100 = 7.000000000000001): 0.07, 0.1, 0.3,
  0.01, 0.03, 0.29, 0.57, 1/3, and the edge 1. Drawn as exact ``Fraction`` so the
  test can compute ``ceil(fraction * n)`` exactly.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

#: The look-back windows (days) the library applies by default or ships in its rules.
LOOKBACKS: tuple[int, ...] = (365, 730)

def edge_offsets(lookback: int) -> list[int]:
    """Day offsets from ``index_date`` where a window of ``L`` days flips.

    ``-L-1, -L, -L+1`` (the far edge; ``-L`` is outside) and ``-1, 0, 1`` (the index
    date; ``0`` is inside, ``1`` after it).
    """
    return [-lookback - 1, -lookback, -lookback + 1, -1, 0, 1]


def day_offsets(lookbacks=LOOKBACKS, *, low: int = -800, high: int = 30):
    """Day offsets from ``index_date``: half on a window edge +-1, half anywhere."""
    edges = sorted({o for lb in lookbacks for o in edge_offsets(lb)})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def offset_lists(lookbacks=LOOKBACKS, *, max_extra: int = 20):
    """Lists of day offsets that always hold every edge offset once, then drawn offsets."""
    edges = sorted({o for lb in lookbacks for o in edge_offsets(lb)})
    return st.lists(day_offsets(lookbacks), max_size=max_extra).flatmap(
        lambda extra: st.permutations(edges + extra))


#: ESP2013 band edges (last age of a band and first of the next), 0 and 90+.
ESP2013_EDGES: tuple[int, ...] = tuple(sorted({0, *range(4, 90, 5), *range(5, 91, 5), 104}))
#: Age gates of the scores and rules: HFRS 75+, eFI / B2H frailty 65+, pregnancy 10-55, infant 0.
AGE_GATE_EDGES: tuple[int, ...] = (0, 1, 9, 10, 55, 56, 64, 65, 74, 75)


EDGE_AGES: tuple[int, ...] = tuple(sorted(set(ESP2013_EDGES + AGE_GATE_EDGES)))


def ages():
    """One whole age in years: on a band edge or age gate, or anywhere in 0-110."""
    return st.one_of(st.sampled_from(EDGE_AGES), st.integers(0, 110))


def age_lists(*, max_extra: int = 20):
    """Lists of ages that always hold every edge age once (a sampled edge can be missed
    in 60 examples), then drawn ages, shuffled."""
    return st.lists(ages(), max_size=max_extra).flatmap(
        lambda extra: st.permutations(list(EDGE_AGES) + extra))


#: Disclosure control: suppress 1-THRESHOLD, round the rest to BASE (NHS Digital).
THRESHOLD, BASE = 7, 5


def counts(*, high: int = 10_000):
    """One count: threshold +-1, a rounding edge ``5k+2``/``5k+3``, 0-20 or anything."""
    near_threshold = st.sampled_from([THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, THRESHOLD + 2])
    rounding_edge = st.integers(0, high // BASE - 1).flatmap(
        lambda k: st.sampled_from([BASE * k + 2, BASE * k + 3]))
    return st.one_of(near_threshold, rounding_edge, st.integers(0, 20), st.integers(0, high))


def count_lists(*, max_extra: int = 30, high: int = 10_000):
    """Lists of counts that always contain every count 0-20, then drawn counts, shuffled."""
    return st.lists(counts(high=high), max_size=max_extra).flatmap(
        lambda extra: st.permutations(list(range(21)) + extra))


#: Fractions that are not exact in binary (and the edge 1), as exact rationals.
FRACTIONS: tuple[Fraction, ...] = (Fraction(7, 100), Fraction(1, 10), Fraction(3, 10),
                                   Fraction(1, 100), Fraction(3, 100), Fraction(29, 100),
                                   Fraction(57, 100), Fraction(1, 3), Fraction(1, 1))


def fractions():
    """A fraction from :data:`FRACTIONS` (pass ``float(f)`` to the library)."""
    return st.sampled_from(FRACTIONS)


def sizes_for(fraction: Fraction, *, high: int = 400):
    """Group sizes: ones where ``fraction * n`` is a whole number (the float trap), or any."""
    step = fraction.denominator
    return st.one_of(st.integers(1, max(1, high // step)).map(lambda k: k * step),
                     st.integers(1, high))
