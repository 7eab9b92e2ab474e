"""gdjax: a JAX-accelerated, vectorized toolkit for studying gradient descent,
basins of attraction and learning-rate schedules."""

from gdjax import basins as basins
from gdjax import data as data
from gdjax import lenet as lenet
from gdjax import schedules as schedules
from gdjax import surfaces as surfaces
from gdjax import train as train
from gdjax.descent import RULES as RULES
from gdjax.descent import Final as Final
from gdjax.descent import OptaxFactory as OptaxFactory
from gdjax.descent import Sweep as Sweep
from gdjax.descent import Trajectory as Trajectory
from gdjax.descent import descend as descend
from gdjax.descent import descend_final as descend_final
from gdjax.descent import describe_rule as describe_rule
from gdjax.descent import optimizer as optimizer
from gdjax.descent import sweep as sweep
from gdjax.surfaces import Surface as Surface

__version__ = "0.1.0"

__all__ = [
    "RULES",
    "Final",
    "OptaxFactory",
    "Surface",
    "Sweep",
    "Trajectory",
    "__version__",
    "basins",
    "data",
    "descend",
    "descend_final",
    "describe_rule",
    "lenet",
    "optimizer",
    "schedules",
    "surfaces",
    "sweep",
    "train",
]
