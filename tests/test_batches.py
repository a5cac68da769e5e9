"""Training batches: streams that carry state from chunk to chunk, packed windows, the same batch at the same step."""

import numpy as np
import pytest

from nabiya.batches import PackedWindows, TuneStreams, prefetch
from nabiya.errors import NabiyaError

BOS, EOS = 1, 2
SCORED = np.array([False, False, True, True] + [False] + [True] * 40)  # 4: a condition; 5..: notes


def _tunes(count: int = 23, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[BOS, 4], rng.integers(5, 45, size=rng.integers(3, 40)), [EOS]]).astype(np.int32)
            for _ in range(count)]  # fmt: skip


def _fields(batch):
    return [batch.inputs, batch.targets, batch.mask, batch.score_mask, batch.resets, batch.segments,
            batch.positions, batch.tunes]  # fmt: skip


def _same(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(_fields(first), _fields(second)))


@pytest.mark.parametrize("kind", [TuneStreams, PackedWindows])
def test_an_epoch_trains_on_every_pair_once_and_scores_only_notes_and_ends(kind):
    tunes = _tunes()
    batches = kind(tunes, SCORED, batch_size=3, length=16, seed=4)
    seen = []
    for batch in batches.epoch(0):
        assert batch.inputs.shape == (3, 16) and batch.inputs.dtype == np.int32
        assert not batch.mask[batch.tunes < 0].any()
        assert (batch.score_mask == batch.mask & SCORED[batch.targets]).all()
        rows, columns = np.nonzero(batch.mask)
        for row, column in zip(rows, columns):
            tune, position = batch.tunes[row, column], batch.positions[row, column]
            if kind is TuneStreams:
                assert batch.inputs[row, column] == tunes[tune][position]
                assert batch.targets[row, column] == tunes[tune][position + 1]
            seen.append((tune, batch.targets[row, column]))
    expected = sorted((tune, token) for tune, sequence in enumerate(tunes) for token in sequence[1:])
    assert sorted(seen) == expected


def test_streams_carry_each_row_on_from_chunk_to_chunk_and_mark_tune_starts():
    tunes = _tunes()
    streams = TuneStreams(tunes, SCORED, batch_size=3, length=16, seed=1)
    chunks = list(streams.epoch(0))
    inputs = np.concatenate([chunk.inputs for chunk in chunks], axis=1)
    targets = np.concatenate([chunk.targets for chunk in chunks], axis=1)
    resets = np.concatenate([chunk.resets for chunk in chunks], axis=1)
    mask = np.concatenate([chunk.mask for chunk in chunks], axis=1)
    assert resets.sum() == len(tunes) and (inputs[resets] == BOS).all()
    assert any(chunk.resets[:, 1:].any() for chunk in chunks)  # a tune can start mid-chunk
    order = []
    for row in range(3):  # each row, read left to right, is its tunes end to end, then padding
        real = int(mask[row].sum())
        assert mask[row, :real].all() and not mask[row, real:].any()
        starts = np.flatnonzero(resets[row])
        for start, end in zip(starts, list(starts[1:]) + [real]):
            match = [index for index, sequence in enumerate(tunes)
                     if np.array_equal(sequence[:-1], inputs[row, start:end])
                     and np.array_equal(sequence[1:], targets[row, start:end])]  # fmt: skip
            assert match, (row, start, end)
            order.append(match[0])
    assert sorted(order) == list(range(len(tunes)))


@pytest.mark.parametrize("kind", [TuneStreams, PackedWindows])
def test_a_step_gives_the_same_batch_however_it_is_reached(kind):
    tunes = _tunes(9)
    first = kind(tunes, SCORED, batch_size=2, length=12, seed=9)
    count = first.batches_in_epoch(0) + first.batches_in_epoch(1) + 3  # into the third epoch
    steps = list(first.iterate(0, count))
    fresh = kind(tunes, SCORED, batch_size=2, length=12, seed=9)
    last = count - 1
    assert _same(fresh.batch(last), steps[last])  # straight to the last step, as a resumed run would
    resumed = kind(tunes, SCORED, batch_size=2, length=12, seed=9).iterate(count // 2, count)
    assert all(_same(a, b) for a, b in zip(resumed, steps[count // 2 :]))
    assert [step.epoch for step in steps[-3:]] == [2, 2, 2]
    assert fresh.position(last) == (2, 2)
    other = kind(tunes, SCORED, batch_size=2, length=12, seed=10)
    assert not _same(other.batch(0), steps[0])  # another seed, another order
    assert not np.array_equal(first.order(0), first.order(1))  # a new order every epoch


def test_packed_windows_hold_whole_tunes_in_segments_and_window_long_ones():
    tunes = _tunes(12)
    long_tune = np.concatenate([[BOS, 4], np.arange(5, 45), np.arange(5, 25), [EOS]]).astype(np.int32)  # 63 pairs
    windows = PackedWindows(tunes + [long_tune], SCORED, batch_size=4, length=24, stride=8, shuffle=False)
    trained = {}
    for batch in windows.epoch(0):
        for row in range(4):
            for segment in range(1, batch.segments[row].max() + 1):
                columns = np.flatnonzero(batch.segments[row] == segment)
                assert np.array_equal(columns, np.arange(columns[0], columns[-1] + 1))  # contiguous
                assert batch.resets[row, columns[0]] and not batch.resets[row, columns[1:]].any()
                assert np.array_equal(batch.positions[row, columns], np.arange(len(columns)))
                tune = batch.tunes[row, columns[0]]
                assert (batch.tunes[row, columns] == tune).all()
                if tune < 12 and len(tunes[tune]) - 1 <= 24:  # a short tune: whole, from its <bos>
                    assert np.array_equal(batch.inputs[row, columns], tunes[tune][:-1])
                elif tune == 12:
                    for column in columns[batch.mask[row, columns]]:
                        trained.setdefault(batch.targets[row, column], 0)
                        trained[batch.targets[row, column]] += 1
    assert sum(trained.values()) == len(long_tune) - 1  # each pair of the long tune trained on once
    with pytest.raises(NabiyaError, match="stride"):
        PackedWindows(tunes, SCORED, batch_size=1, length=8, stride=9)


def test_prefetching_gives_the_same_batches_in_order():
    streams = TuneStreams(_tunes(), SCORED, batch_size=2, length=8, seed=3)
    ahead = list(prefetch(streams.iterate(0, 30), depth=3))
    assert [batch.step for batch in ahead] == list(range(30))
    assert all(_same(a, b) for a, b in zip(ahead, streams.iterate(0, 30)))
    stopped = prefetch(streams.iterate(0), depth=2)  # an endless stream, dropped after two batches
    assert next(stopped).step == 0 and next(stopped).step == 1
    stopped.close()


def test_batches_need_tunes():
    with pytest.raises(NabiyaError, match="no tune"):
        TuneStreams([np.array([BOS])], SCORED, batch_size=2, length=8)
