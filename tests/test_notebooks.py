"""The notebooks in examples/ run top to bottom in a real Jupyter kernel.

Every examples/*.ipynb is picked up. Each has one code cell tagged
"parameters" holding its sizes (full size by default); the test inserts a cell
right after it with the small sizes in SMALL, runs the notebook with nbclient
in an IPython kernel of this interpreter (so of this virtual environment) and
fails on an error, on anything written to stderr (a warning) and on a
notebook that shows no figure. The notebooks are stored without outputs, and
README.md's notebook section lists them all and shows the quick start's code
exactly.
"""

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))

# The small sizes each notebook runs with here (a few seconds each).
SMALL = {
    "01_quickstart.ipynb": {"N_STARTS": 8, "STEPS": 50, "N_RATES": 3},
    "02_basins_lr_sweep.ipynb": {"GRID": 12, "STEPS": 100, "N_RATES": 4},
    "03_schedules.ipynb": {"COUNTS": 20, "N_RATES": 2},
    "04_lenet_population.ipynb": {"EPOCHS": 2, "SUBSET": 512, "TEST_SUBSET": 256},
}

TIMEOUT = 300  # seconds a cell may take


def _ids(paths):
    return [p.name for p in paths]


def _parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"want one cell tagged 'parameters', found {len(tagged)}"
    assert nb.cells[tagged[0]].cell_type == "code"
    return tagged[0]


def _assigned(source: str) -> set[str]:
    tree = ast.parse(source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


class _Recorder(NotebookClient):
    """nbclient, recording every figure each cell's run displayed: per cell,
    (message type, PNG) for each display_data and update_display_data."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.figures: dict[int, list[tuple[str, str]]] = {}

    def process_message(self, msg, cell, cell_index):
        png = msg["content"].get("data", {}).get("image/png")
        if msg["msg_type"] in ("display_data", "update_display_data") and png:
            self.figures.setdefault(cell_index, []).append((msg["msg_type"], png))
        return super().process_message(msg, cell, cell_index)


def _kernel(tmp_path) -> AsyncKernelManager:
    """A kernel manager that starts ipykernel with this interpreter, whatever
    kernelspecs the machine or the user has installed."""
    spec = tmp_path / "kernels" / "gdjax-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "gdjax test", "language": "python"})
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return AsyncKernelManager(kernel_name="gdjax-test", kernel_spec_manager=specs)


def execute(path: Path, small: dict, tmp_path: Path, monkeypatch) -> tuple:
    """Runs the notebook at ``path`` with ``small`` injected after its parameters
    cell; returns the executed notebook and its client (a _Recorder)."""
    nb = nbformat.read(path, as_version=4)
    at = _parameters_cell(nb) + 1
    lines = [f"{k} = {v!r}" for k, v in small.items()]
    lines.append(f"import sys\n\nassert sys.prefix == {sys.prefix!r}, sys.prefix")
    nb.cells.insert(at, nbformat.v4.new_code_cell("\n".join(lines)))
    # the kernel runs as a user's would: its own matplotlib backend (inline) and
    # JAX's own device count, not the test suite's
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    client = _Recorder(
        nb,
        km=_kernel(tmp_path),
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute(cleanup_kc=True)  # shut the kernel down, and close its sockets
    nbformat.write(nb, tmp_path / path.name)  # the executed copy, to look at
    return nb, client


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_every_notebook_has_small_sizes():
    assert NOTEBOOKS, "no notebooks in examples/"
    assert sorted(SMALL) == _ids(NOTEBOOKS), "give every notebook its small sizes in SMALL"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        names = _assigned(nb.cells[_parameters_cell(nb)].source)
        missing = set(SMALL[path.name]) - names
        assert not missing, f"{path.name}: its parameters cell sets no {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} was numbered"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, sorted(nb.metadata)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_runs_in_a_kernel(path, tmp_path, monkeypatch):
    small = SMALL[path.name]
    nb, client = execute(path, small, tmp_path, monkeypatch)
    outputs = _outputs(nb)
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr:\n" + "\n".join(stderr)
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} showed no figure"

    # plot.live shows its figure after the first epoch, then replaces it in
    # place after every later one: one output, holding the last figure
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "plot.live(" not in cell.source:
            continue
        sent = [png for kind, png in client.figures.get(i, []) if kind == "display_data"]
        updates = [png for kind, png in client.figures.get(i, []) if kind != "display_data"]
        assert len(sent) == 1 and len(updates) == small["EPOCHS"] - 1
        shown = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        assert shown == [updates[-1]] and updates[-1] != sent[0]


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## In a notebook\n", 1)[1].split("\n## ", 1)[0]


def test_readme_lists_every_notebook():
    listed = set(re.findall(r"`(\w+\.ipynb)`", _readme_section()))
    assert listed == set(_ids(NOTEBOOKS))


def test_readme_snippet_is_the_quickstart():
    mark = "<!-- the code cells of examples/01_quickstart.ipynb -->\n```python\n"
    section = _readme_section()
    assert section.count(mark) == 1, "README's notebook section lost its quick-start block"
    snippet = section.split(mark, 1)[1].split("\n```\n", 1)[0]
    nb = nbformat.read(EXAMPLES / "01_quickstart.ipynb", as_version=4)
    code = "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert snippet == code
