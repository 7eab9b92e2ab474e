#!/usr/bin/env bash
# Installs gdjax into its own virtual environment, .venv/ beside this file, on a Debian-like
# machine with nothing active (a plain python3 under PEP 668 is fine):
#   ./setup.sh          gdjax itself, and the real Fashion-MNIST files (Debian's dataset-fashion-mnist)
#   ./setup.sh test     the same, plus the test dependencies
#   ./setup.sh EXTRAS   any extras of pyproject.toml, comma-separated (e.g. test,bench or cuda)
# Then run .venv/bin/gdjax, .venv/bin/python, or `source .venv/bin/activate` first.
# GDJAX_VENV=DIR puts the environment elsewhere; PYTHON=python3.12 picks the interpreter.
# The dataset step is skipped when the files are already present (or $GDJAX_DATA_DIR is set);
# without apt-get (or root/sudo) it says so and gdjax downloads the files on first use.
set -euo pipefail
cd "$(dirname "$0")"
extras="${1:-}"
venv="${GDJAX_VENV:-.venv}"
python="${PYTHON:-python3}"

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi

apt_install() {  # apt_install PACKAGE...: quietly, updating the package lists only when needed
  $sudo apt-get install -y -q "$@" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$@" >/dev/null; }
}

data_dir=/usr/share/datasets/fashion-mnist
if [ -z "${GDJAX_DATA_DIR:-}" ] && [ ! -f "$data_dir/t10k-labels-idx1-ubyte.gz" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's dataset-fashion-mnist (the real Fashion-MNIST files)"
    apt_install dataset-fashion-mnist
  else
    echo "setup: no apt-get; gdjax will download Fashion-MNIST on first use (or set GDJAX_DATA_DIR)"
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup: $python not found; install Python 3.10 or newer (Debian: apt-get install python3)" >&2
    exit 1
  fi
  echo "setup: creating the virtual environment $venv with $("$python" --version 2>&1)"
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv's pip bootstrap separately (python3-venv).
    rm -rf "$venv"
    if command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian's python3-venv"
      apt_install python3-venv
    fi
    "$python" -m venv "$venv"
  fi
fi

echo "setup: installing gdjax${extras:+[$extras]} into $venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  "$venv/bin/python" -m pip install -q -e ".[$extras]"
else
  "$venv/bin/python" -m pip install -q -e .
fi
echo "setup: done. Run $venv/bin/gdjax --help (or: source $venv/bin/activate)"
