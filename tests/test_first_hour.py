"""What a new user meets in the first hour: the notebook API, the progress line, help and messages (issue 7)."""

from __future__ import annotations

import dataclasses
import importlib
import io
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import nabiya
from nabiya.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def short_run():
    """A cheap real run (the MLP, 2 epochs): what the notebook API returns."""
    return nabiya.run("mlp", epochs=2, progress=False)


def test_every_public_name_is_what_it_says_after_a_run_and_every_import(short_run):
    """`nabiya.generate` was the submodule of that name once `nabiya.run()` had run (issue 7.14)."""
    for module in pkgutil.walk_packages(nabiya.__path__, "nabiya."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    exports = nabiya._EXPORTS
    for name in nabiya.__all__:
        assert getattr(nabiya, name) is getattr(importlib.import_module(exports[name]), name), name
    assert callable(nabiya.generate) and callable(nabiya.run) and callable(nabiya.convert)
    submodules = {module.name.rsplit(".", 1)[-1] for module in pkgutil.iter_modules(nabiya.__path__)}
    assert not submodules & set(nabiya.__all__), "a public name that is also a submodule is lost on import"


def test_continue_song_takes_every_song_form_run_takes(model_file):
    """`continue_song(saved, "g8 e8 e4 f8")` was an AttributeError traceback (issue 7.15)."""
    saved = nabiya.load_model(model_file)
    primer = saved.song.notes[:4]
    expected = nabiya.continue_song(saved, primer, steps=5)
    for form in ("g8 e8 e4 f8", ["g8", "e8", "e4", "f8"], nabiya.Song(primer), list(primer)):
        assert nabiya.continue_song(saved, form, steps=5) == expected, form
    assert len(nabiya.continue_song(saved, "nabiya", steps=3)) == 3  # a built-in song's name
    with pytest.raises(nabiya.NabiyaError, match="a primer is notes, a Song"):
        nabiya.continue_song(saved, 42, steps=3)


def test_a_notes_repr_makes_the_same_note():
    for code in ("g8", "r4", "f#'4.", "c:5/2", "bb,16"):
        note = nabiya.Note(code)
        assert repr(note) == f"Note({code!r})" and eval(repr(note), {"Note": nabiya.Note}) == note


def test_plots_are_returned_not_also_shown(short_run):
    """A figure pyplot knows is shown by Jupyter's inline backend and again as the cell's value (issue 7.16)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figure = short_run.plot_loss()
    assert plt.get_fignums() == before and figure.axes[0].get_yscale() == "log"


def test_a_comparison_table_is_a_table(short_run):
    table = nabiya.Comparison((short_run, short_run)).table()
    assert [row["preset"] for row in table.rows] == ["mlp", "mlp"]
    html = table._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 3 and "<th>accuracy</th>" in html
    text = str(table).splitlines()
    assert text[1].split() == list(table.rows[0]) and text[2].split()[0] == "mlp"


def test_adams_spikes_are_explained_on_the_plot():
    """Stateful presets spike from ~1e-5 back up about ten times (Adam, ε = 1e-7): say so (issue 7.23)."""
    from nabiya.plots import ADAM_SPIKES_NOTE, count_spikes, plot_loss

    smooth = np.geomspace(2.0, 1e-5, 200)
    spiky = smooth.copy()
    spiky[[150, 151, 180]] = [0.8, 0.3, 1.1]
    assert count_spikes(smooth) == 0 and count_spikes(spiky) == 2
    assert [text.get_text() for text in plot_loss({"stateful": spiky}).texts] == [ADAM_SPIKES_NOTE]
    assert plot_loss({"mlp": smooth}).texts == []


def test_a_lost_100_percent_is_said_plainly(short_run, capsys):
    """50 epochs: "92.3% (first 100% at epoch 43)" read as if 100% held (issue 7.24)."""
    from nabiya.display import one_line, print_run

    history = np.array([0.5, 1.0, 1.0, 0.923])
    lost = dataclasses.replace(short_run, accuracy_history=history, accuracy=0.923)
    assert lost.lost_perfect and lost.summary()["final_accuracy_below_earlier_100_percent"] is True
    print_run(lost)
    out = capsys.readouterr().out
    assert "92.3%: below the 100% first reached at epoch 2" in " ".join(out.split())
    assert "100% at epoch 2 (lost by the end)" in one_line(lost)
    assert not short_run.lost_perfect


# --- the progress line -----------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    from rich.cells import cell_len

    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return [line for line in re.split(r"[\r\n]", plain) if line.strip() and cell_len(line) >= 0]


@pytest.mark.parametrize("epochs", [2000, 100_000])
def test_the_progress_line_fits_80_columns_says_compiling_then_an_eta(epochs):
    """At 80 columns the bar was cut (`0/20… epochs`) and sat at 0/2000 while compiling (issue 7.17)."""
    from rich.cells import cell_len
    from rich.console import Console

    from nabiya.progress import training_progress

    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    with training_progress("stateful2 · 나비야 (Butterfly)", epochs, console=console) as report:
        first = buffer.getvalue()
        report(epochs // 20, epochs, 0.51, 0.88)
        report(epochs // 10, epochs, 0.01, 1.0)
        middle = buffer.getvalue()
        report(epochs, epochs, 0.0001, 1.0)
    lines = _lines(buffer.getvalue())
    assert all(cell_len(line) <= 80 for line in lines), [line for line in lines if cell_len(line) > 80]
    assert f"0/{epochs} compiling…" in first
    assert " eta " in middle and f"{epochs}/{epochs} loss 0.0001 acc 100%" in lines[-1]


def test_in_jupyter_the_progress_line_needs_no_ipywidgets():
    """Without ipywidgets the bar was a warning and nothing (issue 7.16): one text output updated in place."""
    from nabiya.progress import notebook_progress

    shown = []

    class Handle:
        def update(self, value):
            shown.append(repr(value))

    def display(value, display_id=False):
        assert display_id is True
        shown.append(repr(value))
        return Handle()

    with notebook_progress("mlp · 나비야", 2000, display=display) as report:
        report(100, 2000, 0.5, 0.9)
        report(2000, 2000, 0.01, 1.0)
    assert shown[0] == "mlp · 나비야: 0/2000 compiling…"
    assert shown[-1].startswith("mlp · 나비야: 2000/2000 loss 0.0100 acc 100% · ")


# --- the command line ------------------------------------------------------------------------------


def test_compare_help_has_no_doubled_percent_and_quiet_is_one_line(short_run, capsys):
    """`compare --help` printed `100%%`; `compare --quiet` printed the whole table (issue 7.21)."""
    from nabiya.display import print_comparison

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert "100%%" not in capsys.readouterr().out
    print_comparison(nabiya.Comparison((short_run, short_run)), out=Path("runs/x"), quiet=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("compare: accuracy (full song): mlp ") and "→ runs/x" in out


@pytest.mark.parametrize("command", ["run", "compare", "generate", "convert", "songs"])
def test_an_unknown_option_points_at_the_commands_own_help(command, capsys):
    args = {"generate": ["generate", "m.safetensors"], "convert": ["convert", "a.abc", "b.mid"]}.get(command, [command])
    assert main([*args, "--frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"(see 'nabiya {command} --help')" in err


def test_a_multi_tune_file_says_which_tune_it_took(tmp_path, capsys):
    """Without --tune the first tune was taken without a word (issue 7.19)."""
    tunes = tmp_path / "tunes.abc"
    tunes.write_text("X:1\nT:The Butterfly\nL:1/8\nK:C\nGEE2 FDD2|\n\nX:2\nT:Other\nL:1/8\nK:G\nGABc dedB|\n")
    assert main(["convert", str(tunes), str(tmp_path / "one.mid")]) == 0
    err = capsys.readouterr().err
    assert f"nabiya: reading tune X:1 'The Butterfly', the first of 2 in {tunes} (choose another with --tune)" in err
    assert main(["convert", str(tunes), "--tune", "2", str(tmp_path / "two.mid")]) == 0
    assert "reading tune" not in capsys.readouterr().err


def test_one_model_file_extension_everywhere():
    """README, --help and docstrings named three extensions (issue 7.22): .safetensors, as the file is one."""
    import ast

    texts = {"README.md": (ROOT / "README.md").read_text()}
    for path in (ROOT / "src" / "nabiya").rglob("*.py"):
        tree = ast.parse(path.read_text())
        nodes = [tree, *(node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef)))]
        texts[str(path)] = "\n".join(ast.get_docstring(node) or "" for node in nodes)
    parser = build_parser()
    texts["--help"] = "\n".join(action.format_help() if hasattr(action, "format_help") else ""
                                for action in parser._subparsers._group_actions[0].choices.values())  # fmt: skip
    other = re.compile(r"""[\w-]\.(model|nabiya|ckpt|pt|pkl)(?=["'`\s]|$)""", re.M)  # a file name, not code
    for where, text in texts.items():
        assert not other.findall(text), (where, other.findall(text))
    assert ".safetensors" in texts["--help"] and ".safetensors" in texts["README.md"]
