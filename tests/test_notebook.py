"""The tour notebook (docs/tour.ipynb) runs top to bottom, as Jupyter would run it, with tiny settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib
import pytest

from conftest import TINY_CORPUS, TINY_CORPUS_RUN

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "tour.ipynb"

# The notebook's "parameters" cell, lowered for a test (the tutorial's own settings take minutes).
TINY_PARAMETERS = f"""
EPOCHS = 30
SEEDS = range(2)
CORPUS = {TINY_CORPUS!r}
CORPUS_MINUTES = 5
CORPUS_SETTINGS = {TINY_CORPUS_RUN!r}
METER, KEY = "6/8", "D"
"""


def _cells():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _shown(value):
    """What Jupyter would show for a cell's last value: its HTML where it has one, else its repr (a plot
    method returns None: its figure shows itself)."""
    if value is None:
        return None
    html = getattr(value, "_repr_html_", None)
    return html() if callable(html) else repr(value)


def test_the_notebook_has_one_parameters_cell_with_the_tutorials_settings():
    parameters = [cell for cell in _cells() if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1
    namespace: dict = {}
    exec("".join(parameters[0]["source"]), namespace)
    assert namespace["EPOCHS"] == 2000


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_and_every_cell_shows_something(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # run folders go under ./runs, as in a user's notebook
    namespace: dict = {"__name__": "__main__"}
    shown = []
    for cell in _cells():
        source = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = TINY_PARAMETERS
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            shown.append(_shown(value))
    assert namespace["result"].accuracy > 0
    assert len(namespace["sweep"].runs) == 2
    assert namespace["analysis"].at(4).best_matches == 46
    assert namespace["new_tunes"].abc(0).count("M:6/8") == 1
    shown = [text for text in shown if text is not None]
    assert all(text.strip() for text in shown), "a cell showed an empty text"
    assert any("n-gram" in text for text in shown)  # the corpus model's table names its baseline
    assert shown[-1].count("<audio") == 1  # the new tune's player
