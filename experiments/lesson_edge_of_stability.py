"""Beyond the stability limit: period doubling, chaos and the edge of stability.

Run: python experiments/lesson_edge_of_stability.py --out runs/lesson_edge_of_stability
(--help for options); the same as:
gdjax lesson edge-of-stability --out runs/lesson_edge_of_stability
(gdjax bifurcation draws one diagram at full size, with --x64 its 8 doublings)
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_edge_of_stability", *args]
    sys.exit(main(["lesson", "edge-of-stability", *args]))
