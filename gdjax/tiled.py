"""Maps larger than memory: a grid map computed tile by tile, streamed to
``labels.npy`` and ``converged_step.npy`` (:mod:`gdjax.maps.tiles`)."""

from gdjax.maps.summary import simulate_best_of_k as simulate_best_of_k
from gdjax.maps.tiles import DiskMap as DiskMap
from gdjax.maps.tiles import Plan as Plan
from gdjax.maps.tiles import StreamFractal as StreamFractal
from gdjax.maps.tiles import map_to_disk as map_to_disk
from gdjax.maps.tiles import plan as plan
from gdjax.maps.tiles import preview_map as preview_map

__all__ = [
    "DiskMap",
    "Plan",
    "StreamFractal",
    "map_to_disk",
    "plan",
    "preview_map",
    "simulate_best_of_k",
]
