"""Plots: matplotlib helpers, one module per part.

Every function takes ``ax=None`` (a new figure is made when omitted), returns the Axes
and never calls ``plt.show()``; matplotlib is imported when a plot is drawn
(``pip install pophealth[plot]``). Every figure has a title, axis labels with units,
legends outside the data, colour-blind-safe colours (Okabe-Ito) and a caption line
under the axes from ``population=``, ``period=`` and ``source=`` (missing parts read
"not stated"; :func:`add_caption` adds one to your own figures).

* :mod:`~pophealth.plots.population` -- age-sex pyramid.
* :mod:`~pophealth.plots.areas` -- rates by IMD, funnel plot, area ranking.
* :mod:`~pophealth.plots.segments` -- segment pyramid, patient vs cost shares.
* :mod:`~pophealth.plots.cohorts` -- Lorenz curve of cost, cost distribution in pounds.
* :mod:`~pophealth.plots.risk` -- calibration plot, risk pyramid.
"""

from pophealth.plots._style import (
    OKABE_ITO,
    SEGMENT_COLOURS,
    add_caption,
    caption_text,
)
from pophealth.plots.areas import plot_area_ranking, plot_funnel, plot_rates_by_imd
from pophealth.plots.cohorts import lorenz, plot_cost_distribution
from pophealth.plots.population import plot_age_sex_pyramid
from pophealth.plots.risk import plot_calibration, plot_risk_pyramid
from pophealth.plots.segments import plot_segment_cost, plot_segment_pyramid, segment_colours

__all__ = [
    "OKABE_ITO",
    "SEGMENT_COLOURS",
    "add_caption",
    "caption_text",
    "lorenz",
    "plot_age_sex_pyramid",
    "plot_area_ranking",
    "plot_calibration",
    "plot_cost_distribution",
    "plot_funnel",
    "plot_rates_by_imd",
    "plot_risk_pyramid",
    "plot_segment_cost",
    "plot_segment_pyramid",
    "segment_colours",
]
