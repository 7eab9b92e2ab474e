"""Basin maps, one path for all: a :class:`MapConfig` checked once -> the
one runner (:func:`run_map`, :class:`gdjax.maps.runner.Runner`) -> a sink:
in memory (a :class:`gdjax.basins.BasinMap`) or streamed to disk, tile by
tile (:func:`map_to_disk`).

Modules: ``config`` (the configuration, its cost and the starts' grid),
``runner`` (the compiled chunk programs and the in-memory sink),
``summary`` (what a map is: labels, fractions, statistics), ``critical``
(minima and critical points), ``tiles`` (maps larger than memory).
"""

from gdjax.maps.config import Cost as Cost
from gdjax.maps.config import MapConfig as MapConfig
from gdjax.maps.runner import run_map as run_map

__all__ = ["Cost", "MapConfig", "run_map"]
