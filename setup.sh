#!/usr/bin/env bash
# Installs what gdjax needs on a Debian-like machine:
#   ./setup.sh          gdjax itself, and the real Fashion-MNIST files (Debian's dataset-fashion-mnist)
#   ./setup.sh test     the same, plus the test dependencies
#   ./setup.sh EXTRAS   any extras of pyproject.toml, comma-separated (e.g. test,bench)
# The dataset step is skipped when the files are already present (or $GDJAX_DATA_DIR is set);
# without apt-get (or root/sudo) it says so and gdjax downloads the files on first use.
set -euo pipefail
cd "$(dirname "$0")"
extras="${1:-}"

data_dir=/usr/share/datasets/fashion-mnist
if [ -z "${GDJAX_DATA_DIR:-}" ] && [ ! -f "$data_dir/t10k-labels-idx1-ubyte.gz" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    echo "setup: installing Debian's dataset-fashion-mnist (the real Fashion-MNIST files)"
    $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null \
      || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  else
    echo "setup: no apt-get; gdjax will download Fashion-MNIST on first use (or set GDJAX_DATA_DIR)"
  fi
fi

if [ -n "$extras" ]; then
  python -m pip install -q -e ".[$extras]"
else
  python -m pip install -q -e .
fi
