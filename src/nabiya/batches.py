"""Batches of tunes for training corpus models: numpy only, deterministic, made on the fly.

Both kinds of batch are made from token sequences (``<bos>`` … ``<eos>``, see
:mod:`nabiya.tokens`) as *pairs*: position ``t`` reads ``inputs[t]`` and predicts
``targets[t]``, the token after it in the same tune. A tune of ``L`` tokens gives ``L - 1``
pairs; no pair crosses from one tune into the next.

- :class:`TuneStreams` (for an LSTM: truncated backpropagation through time). The tunes of
  an epoch, shuffled, are laid end to end in ``B`` streams of about equal length; batch
  ``c`` is the ``c``-th chunk of ``T`` pairs of every stream, so the state at the end of a
  chunk is the state to start the next from, row by row. ``resets`` marks where a tune
  starts (its ``<bos>`` is read): reset the state *before* reading that position, which can
  fall anywhere in a chunk. A stream that runs out is padded (``mask`` False).
- :class:`PackedWindows` (for a decoder-only transformer). Each row of ``T`` pairs holds
  whole tunes, packed one after another in shuffled order, then padding; ``segments``
  numbers the tunes of a row (1, 2, …; 0 is padding) and ``positions`` counts from 0 at
  each tune's start, so attention is causal *within* a segment (``segments[q] == segments[k]``
  and ``k <= q``). A tune longer than ``T`` pairs is cut into windows of ``T`` that overlap
  by ``T - stride``; a later window trains only on its last ``stride`` pairs (the rest is
  context, ``mask`` False), so every pair is trained on exactly once, with at least
  ``T - stride`` pairs before it.

**Positions and determinism.** Epoch ``e``'s order is a permutation drawn from
``numpy.random.default_rng([seed, e])`` (no shuffle: tune order), so batch ``step`` is a
function of ``(sequences, B, T, seed, step)`` alone: :meth:`batch` makes any step directly,
and a run resumed at step ``s`` continues with exactly the batches it would have had
(:meth:`iterate` with ``start=s``). :meth:`position` names the epoch and batch of a step.

**Cost.** Nothing corpus-sized is built: a batch is copied from the sequences (``O(B·T)``
int32), an epoch's layout is ``O(tunes)`` ints. Making a batch takes well under a
millisecond for ``B = 64, T = 128``, so :func:`prefetch` on a thread keeps a device fed.

Every batch is a :class:`Batch` of ``(B, T)`` arrays.
"""

from __future__ import annotations

import heapq
import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from nabiya.errors import NabiyaError

PAD = 0
OPEN_ROWS = 16  # rows a packer keeps open for more tunes


@dataclass(frozen=True)
class Batch:
    """``B`` rows of ``T`` positions.

    Attributes:
        inputs: ``(B, T)`` int32, the token read at each position (``<pad>`` 0 in padding).
        targets: ``(B, T)`` int32, the token to predict (``<pad>`` in padding).
        mask: ``(B, T)`` bool, a position to train on (a real pair; not padding, and not the
            context part of a long tune's later window). Conditioning tokens are targets
            here, so a model also learns to draw a tune's meter and mode.
        score_mask: ``(B, T)`` bool, ``mask`` and a target that is scored (a note, ``<unk>``
            or ``<eos>``): the positions of the NLL every model and baseline reports.
        resets: ``(B, T)`` bool, a tune starts here (``inputs`` is its ``<bos>``; or, in a
            window that starts inside a tune, the window's first position).
        segments: ``(B, T)`` int32, which tune of the row (1, 2, …), 0 for padding.
        positions: ``(B, T)`` int32, the index of the input in its tune (or window) from 0.
        tunes: ``(B, T)`` int32, the index of the tune in the sequences given, -1 for padding.
        step: the step this batch is for; epoch: its epoch.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    score_mask: np.ndarray
    resets: np.ndarray
    segments: np.ndarray
    positions: np.ndarray
    tunes: np.ndarray
    step: int
    epoch: int


class _Batches:
    """What both kinds share: epochs of layouts, steps to (epoch, batch), iteration."""

    def __init__(self, sequences: Sequence[np.ndarray], scored: np.ndarray, *, batch_size: int, length: int,
                 seed: int, shuffle: bool) -> None:  # fmt: skip
        if batch_size < 1 or length < 1:
            raise NabiyaError(f"batches need at least 1 row of 1 position, not {batch_size} x {length}")
        self.sequences = [np.asarray(sequence, dtype=np.int32) for sequence in sequences]
        if not self.sequences or all(len(sequence) < 2 for sequence in self.sequences):
            raise NabiyaError("no tune to make batches of (each needs at least 2 tokens)")
        self.scored = np.asarray(scored, dtype=bool)
        self.batch_size, self.length, self.seed, self.shuffle = batch_size, length, seed, shuffle
        self._epoch_batches: list[int] = []  # batches in each epoch so far computed
        self._layouts: dict[int, object] = {}

    def order(self, epoch: int) -> np.ndarray:
        """The tunes of an epoch, in order: a permutation of ``range(len(sequences))``."""
        if not self.shuffle:
            return np.arange(len(self.sequences))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.sequences))

    def batches_in_epoch(self, epoch: int) -> int:
        return self._layout(epoch)[0]

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of a step (0-based)."""
        if step < 0:
            raise NabiyaError(f"a step is at least 0, not {step}")
        while sum(self._epoch_batches) <= step:
            self._epoch_batches.append(self.batches_in_epoch(len(self._epoch_batches)))
        epoch, before = 0, 0
        while before + self._epoch_batches[epoch] <= step:
            before += self._epoch_batches[epoch]
            epoch += 1
        return epoch, step - before

    def batch(self, step: int, rows: slice | None = None) -> Batch:
        """The batch of a step (any step, in any order); with ``rows``, only those rows of it
        (a process of a distributed run makes only its own rows: :mod:`nabiya.distributed`)."""
        epoch, index = self.position(step)
        return self._make(epoch, index, step, _row_range(self.batch_size, rows))

    def iterate(self, start: int = 0, stop: int | None = None) -> Iterator[Batch]:
        """Batches from step ``start`` on (to ``stop``, exclusive, or forever)."""
        step = start
        while stop is None or step < stop:
            yield self.batch(step)
            step += 1

    def epoch(self, epoch: int = 0, rows: slice | None = None) -> Iterator[Batch]:
        """The batches of one epoch, in order (with ``shuffle=False``: one pass for evaluation); ``rows`` as in
        :meth:`batch`."""
        first = sum(self.batches_in_epoch(e) for e in range(epoch))
        for index in range(self.batches_in_epoch(epoch)):
            yield self._make(epoch, index, first + index, _row_range(self.batch_size, rows))

    def _layout(self, epoch: int):
        if epoch not in self._layouts:
            if len(self._layouts) > 4:
                self._layouts.pop(next(iter(self._layouts)))
            self._layouts[epoch] = self._build_layout(epoch)
        return self._layouts[epoch]

    def _empty(self, rows: range) -> dict:
        shape = (len(rows), self.length)
        return {
            "inputs": np.zeros(shape, np.int32), "targets": np.zeros(shape, np.int32), "mask": np.zeros(shape, bool),
            "resets": np.zeros(shape, bool), "segments": np.zeros(shape, np.int32),
            "positions": np.zeros(shape, np.int32), "tunes": np.full(shape, -1, np.int32),
        }  # fmt: skip

    def _finish(self, arrays: dict, step: int, epoch: int) -> Batch:
        score = arrays["mask"] & self.scored[arrays["targets"]]
        return Batch(**arrays, score_mask=score, step=step, epoch=epoch)

    def _build_layout(self, epoch: int):
        raise NotImplementedError

    def _make(self, epoch: int, index: int, step: int, rows: range) -> Batch:
        raise NotImplementedError


def _row_range(batch_size: int, rows: slice | None) -> range:
    """The rows of a batch that ``rows`` names (all of them for None)."""
    return range(batch_size)[rows if rows is not None else slice(None)]


class TuneStreams(_Batches):
    """Batches for truncated backpropagation through time: ``B`` streams of tunes, ``T`` pairs a chunk.

    Args:
        sequences: token sequences, one per tune (e.g. ``TokenizedCorpus.train``).
        scored: ``(V,)`` bool, which targets are scored (``vocab.is_scored``).
        batch_size: B, the streams side by side.
        length: T, pairs per chunk (the truncation length of backpropagation).
        seed: the shuffle's seed.
        shuffle: a new order of tunes every epoch (False: corpus order, for evaluation).

    Example:
        >>> streams = TuneStreams([np.array([1, 4, 5, 2]), np.array([1, 6, 2])], np.ones(7, bool),
        ...                       batch_size=1, length=4, shuffle=False)
        >>> batch = streams.batch(0)
        >>> batch.inputs.tolist(), batch.targets.tolist(), batch.resets.tolist()
        ([[1, 4, 5, 1]], [[4, 5, 2, 6]], [[True, False, False, True]])
    """

    def __init__(self, sequences: Sequence[np.ndarray], scored: np.ndarray, *, batch_size: int, length: int,
                 seed: int = 0, shuffle: bool = True) -> None:  # fmt: skip
        super().__init__(sequences, scored, batch_size=batch_size, length=length, seed=seed, shuffle=shuffle)

    def _build_layout(self, epoch: int):
        """Each stream's tunes and where each starts (in pairs); tunes go to the shortest stream."""
        streams: list[list[int]] = [[] for _ in range(self.batch_size)]
        heap = [(0, row) for row in range(self.batch_size)]
        for tune in self.order(epoch).tolist():
            pairs = len(self.sequences[tune]) - 1
            if pairs < 1:
                continue
            filled, row = heapq.heappop(heap)
            streams[row].append(tune)
            heapq.heappush(heap, (filled + pairs, row))
        layouts = []
        for tunes in streams:
            lengths = np.array([len(self.sequences[tune]) - 1 for tune in tunes], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)])
            layouts.append((np.asarray(tunes, dtype=np.int64), starts))
        longest = max(starts[-1] for _, starts in layouts)
        return -(-int(longest) // self.length), layouts

    def _make(self, epoch: int, index: int, step: int, rows: range) -> Batch:
        _, layouts = self._layout(epoch)
        arrays = self._empty(rows)
        begin, end = index * self.length, (index + 1) * self.length
        for row, (tunes, starts) in enumerate(layouts[rows.start : rows.stop]):
            first = int(np.searchsorted(starts, begin, side="right")) - 1
            for place in range(max(first, 0), len(tunes)):
                start = int(starts[place])
                if start >= end:
                    break
                sequence = self.sequences[tunes[place]]
                low, high = max(begin, start), min(end, int(starts[place + 1]))
                if low >= high:
                    continue
                inner = slice(low - start, high - start)  # pair indices within the tune
                columns = slice(low - begin, high - begin)
                arrays["inputs"][row, columns] = sequence[:-1][inner]
                arrays["targets"][row, columns] = sequence[1:][inner]
                arrays["mask"][row, columns] = True
                arrays["positions"][row, columns] = np.arange(inner.start, inner.stop)
                arrays["tunes"][row, columns] = tunes[place]
                if low == start:
                    arrays["resets"][row, low - begin] = True
        resets = arrays["resets"]
        arrays["segments"] = np.where(arrays["mask"], np.cumsum(resets, axis=1) + 1 - resets[:, :1], 0).astype(np.int32)
        return self._finish(arrays, step, epoch)


class PackedWindows(_Batches):
    """Batches for a decoder-only transformer: rows of ``T`` pairs packed with whole tunes.

    Args:
        sequences: token sequences, one per tune.
        scored: ``(V,)`` bool, which targets are scored (``vocab.is_scored``).
        batch_size: B, rows per batch.
        length: T, pairs per row (the model's context).
        stride: how far a long tune's next window starts after the last (default ``T // 2``);
            every pair is trained on in exactly one window.
        seed: the shuffle's seed.
        shuffle: a new order every epoch (False: corpus order, for evaluation).

    Example:
        >>> windows = PackedWindows([np.array([1, 4, 5, 2]), np.array([1, 6, 2])], np.ones(7, bool),
        ...                         batch_size=1, length=6, shuffle=False)
        >>> batch = windows.batch(0)
        >>> batch.inputs.tolist(), batch.segments.tolist(), batch.positions.tolist()
        ([[1, 4, 5, 1, 6, 0]], [[1, 1, 1, 2, 2, 0]], [[0, 1, 2, 0, 1, 0]])
    """

    def __init__(self, sequences: Sequence[np.ndarray], scored: np.ndarray, *, batch_size: int, length: int,
                 stride: int | None = None, seed: int = 0, shuffle: bool = True) -> None:  # fmt: skip
        super().__init__(sequences, scored, batch_size=batch_size, length=length, seed=seed, shuffle=shuffle)
        self.stride = stride or max(length // 2, 1)
        if not 1 <= self.stride <= length:
            raise NabiyaError(f"a window's stride is 1 to its length {length}, not {self.stride}")
        # Pieces: (tune, first pair, end pair, first pair trained on).
        self._pieces: list[list[tuple[int, int, int, int]]] = []
        for tune, sequence in enumerate(self.sequences):
            pairs = len(sequence) - 1
            pieces = []
            if pairs >= 1:
                pieces.append((tune, 0, min(pairs, length), 0))
                trained = min(pairs, length)
                start = self.stride
                while trained < pairs:
                    stop = min(start + length, pairs)
                    pieces.append((tune, start, stop, trained))
                    trained = stop
                    start += self.stride
            self._pieces.append(pieces)

    def _build_layout(self, epoch: int):
        """Rows of pieces: each piece goes to the first of the last few rows with room (first fit
        over a window of :data:`OPEN_ROWS` rows, so packing stays linear in the tunes)."""
        rows: list[list[tuple[int, int, int, int]]] = []
        open_rows: list[list] = []  # [row index, room left]
        for tune in self.order(epoch).tolist():
            for piece in self._pieces[tune]:
                size = piece[2] - piece[1]
                target = next((entry for entry in open_rows if entry[1] >= size), None)
                if target is None:
                    rows.append([])
                    target = [len(rows) - 1, self.length]
                    open_rows.append(target)
                    if len(open_rows) > OPEN_ROWS:
                        open_rows.pop(0)
                rows[target[0]].append(piece)
                target[1] -= size
        return -(-len(rows) // self.batch_size), rows

    def _make(self, epoch: int, index: int, step: int, rows: range) -> Batch:
        _, layout = self._layout(epoch)
        arrays = self._empty(rows)
        first = index * self.batch_size
        for row, pieces in enumerate(layout[first + rows.start : first + rows.stop]):
            column = 0
            for segment, (tune, start, stop, trained) in enumerate(pieces, start=1):
                sequence = self.sequences[tune]
                size = stop - start
                columns = slice(column, column + size)
                arrays["inputs"][row, columns] = sequence[start:stop]
                arrays["targets"][row, columns] = sequence[start + 1 : stop + 1]
                arrays["mask"][row, column + (trained - start) : column + size] = True
                arrays["resets"][row, column] = True
                arrays["segments"][row, columns] = segment
                arrays["positions"][row, columns] = np.arange(size)
                arrays["tunes"][row, columns] = tune
                column += size
        return self._finish(arrays, step, epoch)


def prefetch(batches: Iterable[Batch], depth: int = 4) -> Iterator[Batch]:
    """The same batches, made ahead on a background thread (numpy releases the GIL while copying).

    Stops the thread when the consumer stops (closes the iterator or drops it).

    Example:
        >>> streams = TuneStreams([np.array([1, 4, 5, 2])], np.ones(6, bool), batch_size=1, length=2)
        >>> [batch.step for batch in prefetch(streams.iterate(0, 3))]
        [0, 1, 2]
    """
    items: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(done)
        except BaseException as error:  # hand the error to the consumer
            offer(error)

    thread = threading.Thread(target=produce, name="nabiya-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
