"""Regenerate docs/gallery/: every pophealth plot drawn from a seeded synthetic population.

Usage (from the repository root)::

    python docs/make_gallery.py            # writes docs/gallery/*.png

Deterministic: ``make_population(20_000, random_state=0, index_date="2025-04-01")`` and
explicit seeds everywhere; no clock, no network. Everything shown is synthetic.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script writing files, not a notebook
import matplotlib.pyplot as plt  # noqa: E402

from pophealth import areas as area_stats  # noqa: E402
from pophealth import cohorts, plots  # noqa: E402
from pophealth.contracts.exceptions import DataQualityWarning  # noqa: E402
from pophealth.core import patient_table  # noqa: E402
from pophealth.core.batch import score_patients  # noqa: E402
from pophealth.risk.tiers import risk_tiers  # noqa: E402
from pophealth.segments import bridges_to_health, segment_summary  # noqa: E402
from pophealth.synthetic import SYNTHETIC_LISTS, make_population  # noqa: E402

OUT = Path(__file__).resolve().parent / "gallery"
SOURCE = "synthetic (seed 0)"
BEFORE = "12 months to 2025-04-01"
AFTER = "12 months from 2025-04-01"


def main(out: Path = OUT) -> None:
    """Draw every figure into ``out`` (default docs/gallery)."""
    out.mkdir(parents=True, exist_ok=True)

    def save(ax, name: str) -> None:
        fig = ax.figure
        fig.savefig(out / f"{name}.png", dpi=90)
        plt.close(fig)
        print(f"wrote {name}.png")

    _draw(save)


def _draw(_save) -> None:
    pop = make_population(20_000, random_state=0, index_date="2025-04-01")
    reg = pop.register

    _save(plots.plot_age_sex_pyramid(reg, period="on 2025-04-01", source=SOURCE),
          "age_sex_pyramid")
    prior = cohorts.period_cost(pop.activity, register=reg, start="2024-04-02", end="2025-04-01")
    _save(plots.plot_cost_distribution(prior, cost_label="prior-year cost", period=BEFORE,
                                       source=SOURCE), "cost_distribution")
    _save(plots.lorenz(cohorts.cost_concentration(prior), period=BEFORE, source=SOURCE),
          "lorenz")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        scores = score_patients(reg, pop.events, index_date=pop.index_date,
                                codelists=SYNTHETIC_LISTS)
        patients = patient_table(reg, scores, pop.activity, index_date=pop.index_date)
        segments = bridges_to_health(patients, pop.events, index_date=pop.index_date,
                                     extra_codelists=["cms_snomed_synthetic"])
    print(f"{len(caught)} data-quality notes while scoring (synthetic junk codes)")
    patients = patients.join(segments)
    _save(plots.plot_segment_pyramid(patients, period="on 2025-04-01", source=SOURCE),
          "segment_pyramid")
    _save(plots.plot_segment_cost(segment_summary(patients, cost="prior_cost"),
                                  cost_label="prior-year cost", period=BEFORE, source=SOURCE),
          "segment_cost")

    y = pop.outcomes["emergency_admission"]
    p = pop.outcomes["p_emergency_admission"]
    _save(plots.plot_calibration(y, p, label="true probabilities (oracle)", period=AFTER,
                                 source=SOURCE), "calibration")
    _save(plots.plot_risk_pyramid(risk_tiers(p), y, period=AFTER, source=SOURCE),
          "risk_pyramid")

    people = reg.join(pop.outcomes, on="patient_id")
    lsoa_counts = area_stats.aggregate_by_area(people, by="lsoa", numerator="emergency_admission")
    lsoa_rates = area_stats.crude_rate(lsoa_counts, multiplier=1000, confidence=(0.95, 0.998))
    lsoa_dsr = area_stats.dsr(lsoa_counts, multiplier=1000)
    imd_counts = area_stats.aggregate_by_area(people, by="imd_decile",
                                              numerator="emergency_admission")
    imd_dsr = area_stats.dsr(imd_counts, multiplier=1000, disclosure_control=False)
    imd_sii = area_stats.sii(imd_dsr, random_state=1, repetitions=5_000, transform=True)
    _save(plots.plot_rates_by_imd(imd_dsr, sii=imd_sii, label="emergency admissions",
                                  period=AFTER, source=SOURCE), "rates_by_imd")
    _save(plots.plot_funnel(lsoa_rates.query("area != 'unknown'"), multiplier=1000, annotate=3,
                            period=AFTER, source=SOURCE), "funnel")
    overall = 1000 * lsoa_counts["numerator"].sum() / lsoa_counts["denominator"].sum()
    _save(plots.plot_area_ranking(lsoa_dsr, target=overall, top=20, period=AFTER,
                                  source=SOURCE), "area_ranking")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
