"""experiments/quickstart.ipynb runs top to bottom, small (2 seeds x 2,048 env steps: a few updates, as what
is tested is that every cell runs, not how well it learns), with no cell failing.

The kernel is this interpreter (`sys.executable`): a `python3` kernel spec pointing at it is written to a
temporary JUPYTER_PATH, which comes before any user or system kernel spec of the same name.
"""

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import command_limit

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.ipynb"


def output_text(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


def test_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    (params,) = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert "QUICKSTART_TIMESTEPS" in params.source and "QUICKSTART_SEEDS" in params.source


@pytest.mark.slow
@pytest.mark.end_to_end
def test_quickstart_runs(tmp_path, monkeypatch):
    kernel_dir = tmp_path / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (purejaxppo test)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("QUICKSTART_TIMESTEPS", "2048")
    monkeypatch.setenv("QUICKSTART_SEEDS", "2")
    monkeypatch.setenv("PUREJAXPPO_CACHE", str(tmp_path / "jax-cache"))  # the CLI's compilation cache
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's run directory goes here

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # nbclient takes its timeout in whole seconds only (a float is refused)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=math.ceil(command_limit()),
                                     resources={"metadata": {"path": tmp_path}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails

    code = {c.id: c for c in nb.cells if c.cell_type == "code"}
    errors = [(i, o) for i, c in code.items() for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert "jax" in output_text(code["imports"])
    assert "mean" in output_text(code["final-returns"])
    assert any("image/png" in o.get("data", {}) for o in code["curves"].outputs), "no plot"
    assert "final return" in output_text(code["cli"])
    evaluation = output_text(code["evaluate"])
    assert "evaluation over 100 episodes: mean return" in evaluation, evaluation
    assert "Policy(env='CartPole-v1'" in evaluation
