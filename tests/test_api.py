"""The notebook API: a few lines give the run, its plots, its sound, its files."""

import numpy as np
import pytest

import nabiya


def test_importing_nabiya_is_light():
    import subprocess
    import sys

    code = "import sys, nabiya; print('jax' in sys.modules, 'music21' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_run_result_in_a_few_lines(trained):
    result = trained("stateful2")
    assert isinstance(result, nabiya.RunResult)
    assert result.loss_history.shape == (2000,) and result.accuracy_history.shape == (2000,)
    assert result.full_song.codes == nabiya.get_song("nabiya").codes[4:]
    assert result.full_song.first_mismatch is None and result.full_song.describe_first_mismatch() == "none"
    figure = result.plot_loss()
    assert figure.axes[0].get_yscale() == "log"
    assert len(figure.axes[0].lines[0].get_ydata()) == 2000
    audio = result.play("full_song")
    data = audio if isinstance(audio, bytes) else audio.data
    assert data[:4] == b"RIFF"
    assert "stateful2" in repr(result) and "<table>" in result._repr_html_()


def test_a_collapsing_model_reports_where_it_went_wrong(trained):
    result = trained("mlp")
    index = result.full_song.first_mismatch
    assert index is not None
    assert result.full_song.notes[index] != result.full_song.truth[index]
    assert result.full_song.notes[:index] == result.full_song.truth[:index]
    assert result.full_song.describe_first_mismatch().startswith(f"note {index + 5}:")
    # the tutorial's MLP collapses into an endless run of one note
    tail = [note.code for note in result.full_song.notes[-20:]]
    assert len(set(tail)) == 1


def test_run_writes_its_folder_from_python(tmp_path):
    result = nabiya.run("mlp", epochs=3, progress=False, out=tmp_path / "r")
    assert (tmp_path / "r" / "summary.json").exists()
    seen = []
    nabiya.run("mlp", epochs=3, progress=lambda *args: seen.append(args))
    assert seen[-1][:2] == (3, 3)
    assert np.isfinite(result.loss_history).all()


@pytest.mark.slow
def test_run_accepts_note_codes_and_songs():
    result = nabiya.run("stateful2", song="c4 d4 e4 c4 c4 d4 e4 c4 e4 f4 g2", epochs=5, progress=False)
    assert len(result.full_song.notes) == 11 - 4
    # g2 is not among the tutorial's codes: the song gets a vocabulary of its own tokens, by pitch then length.
    assert result.vocabulary.name == "song" and result.vocabulary.codes == ["c4", "d4", "e4", "f4", "g2"]


@pytest.mark.slow
def test_predictions_keep_the_songs_meter_key_and_pickup():
    """A 3/4 waltz in G with a pickup stays a 3/4 waltz in G in every prediction and file (issue 7.12)."""
    from nabiya.music.abc import song_to_abc

    waltz = nabiya.Song.from_codes("d4 g4 a4 b4 b2 a4 g4 f#4 g2. d4 g4 a4 b4 b2 a4 g4 f#4 g2.", title="Waltz",
                                   meter="3/4", key="G major", pickup=1)
    result = nabiya.run("mlp", song=waltz, epochs=2, progress=False)
    for which in ("song", "one_step", "full_song"):
        song = result.prediction_song(which)
        assert (song.meter, song.key, song.pickup) == ("3/4", "G major", 1), which
        abc = song_to_abc(song)
        assert "M:3/4" in abc and "K:G" in abc and "^F" not in abc, abc
    # Titles a person reads on the sheet music: whose prediction, made how.
    assert result.prediction_song("one_step").title == "Waltz: mlp, one step at a time"
    assert result.prediction_song("full_song").title == "Waltz: mlp, the whole song from its first notes"
