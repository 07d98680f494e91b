"""Plots: matplotlib helpers, one module per part.

Every function takes ``ax=None`` (a new figure is made when omitted), returns the Axes
and never calls ``plt.show()``; matplotlib is imported when a plot is drawn
(``pip install pophealth[plot]``).

* :mod:`~pophealth.plots.areas` -- rates by IMD, funnel plot, area ranking.
* :mod:`~pophealth.plots.segments` -- segment pyramid, patient vs cost shares.
* :mod:`~pophealth.plots.cohorts` -- Lorenz curve of cost.
* :mod:`~pophealth.plots.risk` -- calibration plot, risk pyramid.
"""

from pophealth.plots.areas import plot_area_ranking, plot_funnel, plot_rates_by_imd
from pophealth.plots.cohorts import lorenz
from pophealth.plots.risk import plot_calibration, plot_risk_pyramid
from pophealth.plots.segments import plot_segment_cost, plot_segment_pyramid

__all__ = [
    "lorenz",
    "plot_area_ranking",
    "plot_calibration",
    "plot_funnel",
    "plot_rates_by_imd",
    "plot_risk_pyramid",
    "plot_segment_cost",
    "plot_segment_pyramid",
]
