"""Piano rolls and loss curves: honest counts, notes compared in place, legends that hide nothing."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex

from nabiya.music.note import parse_code
from nabiya.music.songs import nabiya
from nabiya.plots import plot_loss, plot_piano_roll

RED, GREY = "#d62728", "#8c8c8c"


@pytest.fixture
def prediction():
    """나비야 with note 7 an eighth too long (c4 for c8) and note 21 a wrong pitch, after its 4 given notes."""
    truth = nabiya()
    notes = list(truth.notes)
    notes[6] = parse_code("c4")
    notes[20] = parse_code("a8")
    return truth, truth.with_notes(notes)


def bars_of(figure, color):
    return sorted((bar.get_x(), bar.get_y()) for bar in figure.axes[0].patches if to_hex(bar.get_facecolor()) == color)


def test_the_legend_counts_predicted_notes_only_and_the_given_ones_are_grey(prediction):
    truth, predicted = prediction
    figure = plot_piano_roll(truth, predicted, given=4)
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["song (truth)", "given (4 notes)", "prediction: right", "prediction: wrong (2 of 50)"]
    assert len(bars_of(figure, GREY)) == 4
    plt.close(figure)


def test_each_predicted_note_is_drawn_at_the_onset_of_the_true_note_it_predicts(prediction):
    truth, predicted = prediction
    figure = plot_piano_roll(truth, predicted, given=4)
    small = [bar for bar in figure.axes[0].patches if bar.get_height() < 0.5]  # the prediction's bars
    onsets, time = [], 0.0
    for note in truth.notes:
        onsets.append(time)
        time += float(note.duration)
    assert [bar.get_x() for bar in small] == onsets  # the too-long note 7 does not shift notes 8 to 54
    assert small[6].get_width() == 1.0 and to_hex(small[6].get_facecolor()) == RED  # its own, wrong length
    assert [x for x, _ in bars_of(figure, RED)] == [onsets[6], onsets[20]]
    plt.close(figure)


def overlaps(first, second) -> bool:
    return first.x0 < second.x1 and second.x0 < first.x1 and first.y0 < second.y1 and second.y0 < first.y1


@pytest.mark.parametrize("draw", ["roll", "loss"])
def test_the_legend_lies_outside_the_plotting_area_and_inside_the_figure(prediction, draw):
    truth, predicted = prediction
    if draw == "roll":
        figure = plot_piano_roll(truth, predicted, given=4)
    else:
        figure = plot_loss({"stateful2": [1.0 / epoch for epoch in range(1, 2001)], "mlp": [0.5] * 2000})
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # the figure is drawn without pyplot: give it a canvas that renders
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent(renderer)
    assert not overlaps(legend, axes.get_window_extent(renderer))
    assert figure.bbox.x0 <= legend.x0 and legend.x1 <= figure.bbox.x1  # not cut off
    plt.close(figure)
