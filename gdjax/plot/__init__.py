"""Matplotlib figures of gdjax results.

Numeric code never plots, and neither do the lessons; these functions take
the arrays and records gdjax returns (Trajectory, Sweep, Surface, BasinMap,
RunResult, a schedule's rate per update) and return matplotlib Figures.
Nothing here calls ``plt.show``; save with ``fig.savefig`` or let a report
embed them. Non-finite values never reach these functions
from gdjax (diverged runs are frozen and flagged), and diverged runs are drawn
distinctly. Figures are sized to read at about 1000 px wide (a report's
110 dpi), use constrained layout and wrap long titles, and every function
draws any legitimate outcome (nothing converged, everything diverged, no
minimum found) without raising.

The figures live in one module per study; this package re-exports the
lessons' and the basins' figures by name (``gdjax.plot.basin_map``) and the
studies' modules (``gdjax.plot.continuation``). What they share (colours,
titles, the matplotlib backend) is in ``gdjax.plot._style``.
"""

# _style first: it chooses the backend before any module below imports pyplot
from gdjax.plot import _style as _style
from gdjax.plot import attractors as attractors
from gdjax.plot import continuation as continuation
from gdjax.plot import fractal as fractal
from gdjax.plot import high_dim as high_dim
from gdjax.plot import optimizers as optimizers
from gdjax.plot import sharpness as sharpness
from gdjax.plot import trainability as trainability
from gdjax.plot._style import run_colors as run_colors
from gdjax.plot._style import surface_grid as surface_grid
from gdjax.plot.basins import basin_map as basin_map
from gdjax.plot.basins import basin_scatter as basin_scatter
from gdjax.plot.basins import best_of_k_curve as best_of_k_curve
from gdjax.plot.basins import convergence_time_map as convergence_time_map
from gdjax.plot.descent import arrival_by_rule as arrival_by_rule
from gdjax.plot.descent import curve_1d as curve_1d
from gdjax.plot.descent import epochs_to_arrive as epochs_to_arrive
from gdjax.plot.descent import error_grid as error_grid
from gdjax.plot.descent import landscape_2d as landscape_2d
from gdjax.plot.descent import learning_journey as learning_journey
from gdjax.plot.descent import loss_along_paths as loss_along_paths
from gdjax.plot.descent import rules_comparison as rules_comparison
from gdjax.plot.schedules import schedule_curve as schedule_curve
from gdjax.plot.schedules import schedule_grid as schedule_grid
from gdjax.plot.training import live as live
from gdjax.plot.training import policy_comparison as policy_comparison
from gdjax.plot.training import training_curves as training_curves

__all__ = [
    "arrival_by_rule",
    "attractors",
    "continuation",
    "fractal",
    "high_dim",
    "optimizers",
    "sharpness",
    "trainability",
    "basin_map",
    "basin_scatter",
    "best_of_k_curve",
    "convergence_time_map",
    "curve_1d",
    "epochs_to_arrive",
    "error_grid",
    "landscape_2d",
    "learning_journey",
    "live",
    "loss_along_paths",
    "policy_comparison",
    "rules_comparison",
    "run_colors",
    "schedule_curve",
    "schedule_grid",
    "surface_grid",
    "training_curves",
]
