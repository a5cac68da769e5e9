"""Corpus models measured and heard: test-set scores against the baselines, and new tunes.

- :func:`evaluate` (``nabiya.evaluate``) scores a trained corpus model on the tunes of its
  test split (rebuilt from the model file: the corpus spec, the split's shares and seed, the
  vocabulary) and, on exactly the same scored positions, the unigram and the Kneser–Ney
  n-gram fitted on the same training tunes and tokens (its order chosen on the validation
  tunes). Optionally it makes ``samples`` new tunes and reports how many end by themselves,
  how many last a whole number of bars, and the longest run of notes each copies from a
  training tune (:class:`nabiya.ngram.CopyIndex`).
- :func:`generate_tunes` makes whole new tunes: the meter and key given or drawn as often
  as the training tunes have them, sampled in one compiled, batched call
  (:func:`nabiya.generation.generate_batch`) until each chooses ``<eos>`` or reaches a length
  limit. A tune never holds ``<unk>`` (a rare note has no pitch to write): sampling chooses
  among the notes and ``<eos>`` only, and ``<eos>`` not before the first note.

Results show themselves in Jupyter (a table, the tunes with audio players) and are plain
JSON for programs.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from nabiya.corpus_checkpoint import SavedCorpusModel, is_corpus_model_file, load_corpus_model
from nabiya.errors import NabiyaError
from nabiya.metrics import Metrics, Scorer
from nabiya.music.song import Song

_MODE_NAMES = {"ionian": "major", "aeolian": "minor"}  # as the tokens name them
# Orders the n-gram baseline may choose from on validation (the default corpus chooses 14).
NGRAM_MAX_ORDER = 16
DEFAULT_MAX_TOKENS = 512


def resolve_model(model) -> SavedCorpusModel:
    """A loaded corpus model from a :class:`SavedCorpusModel`, a model file, or a run folder (its best model)."""
    if isinstance(model, SavedCorpusModel):
        return model
    if hasattr(model, "model_path") and hasattr(model, "config"):  # a CorpusTrainResult
        return load_corpus_model(model.model_path)
    path = Path(model)
    if path.is_dir():
        candidate = path / "model.safetensors"
        if not candidate.is_file():
            raise NabiyaError(f"{str(path)!r} holds no model.safetensors: not a finished run of 'nabiya train' "
                              "(a run writes it at its first validation)")  # fmt: skip
        path = candidate
    return load_corpus_model(path)


def is_corpus_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a corpus model: its file, or a run folder holding one."""
    path = Path(path)
    if path.is_dir():
        return (path / "model.safetensors").is_file() or (path / "config.json").is_file()
    return is_corpus_model_file(path)


# --- evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleReport:
    """What new tunes say about a model.

    Attributes:
        tunes: the tunes (:class:`GeneratedTunes`).
        ended_share: the share that chose ``<eos>`` before the length limit.
        whole_bars_share: the share (of those with a meter) lasting a whole number of bars, a
            pickup allowed (the length, or the length after the pickup, is whole bars).
        copied_runs: per tune, the longest run of notes it shares with any training tune.
        test_copied_runs: the same for the held-out test tunes: how much real, unseen tunes share.
    """

    tunes: "GeneratedTunes"
    ended_share: float
    whole_bars_share: float
    copied_runs: tuple[int, ...]
    test_copied_runs: tuple[int, ...]

    def to_json(self) -> dict:
        return {
            "count": len(self.tunes),
            "ended_share": self.ended_share,
            "whole_bars_share": self.whole_bars_share,
            "longest_copied_run": {"median": _median(self.copied_runs), "max": max(self.copied_runs, default=0),
                                   "per_tune": list(self.copied_runs)},  # fmt: skip
            "test_tunes_longest_copied_run": {"median": _median(self.test_copied_runs),
                                              "max": max(self.test_copied_runs, default=0)},  # fmt: skip
            "tunes": self.tunes.to_json(),
        }


def _median(values: Sequence[int]) -> float:
    return float(np.median(values)) if len(values) else 0.0


@dataclass(frozen=True, eq=False)
class CorpusEvaluation:
    """Scores of a corpus model and its baselines on one part of its corpus (the test tunes).

    Attributes:
        model: the model's :class:`~nabiya.metrics.Metrics`; ``ngram``, ``unigram``: the baselines'.
        ngram_order: the n-gram's order (chosen on the validation tunes).
        part: ``"test"`` (or ``"valid"``); tunes: how many; positions: scored positions (the same for all).
        preset: the model's preset; model_path: its file.
        samples: a :class:`SampleReport` when tunes were generated, else None.
    """

    model: Metrics
    ngram: Metrics
    unigram: Metrics
    ngram_order: int
    part: str
    tunes: int
    positions: int
    preset: str
    model_path: str
    samples: SampleReport | None = None

    @property
    def improvement(self) -> float:
        """How far below the n-gram's the model's NLL is, as a share (0.15: 15% below)."""
        return 1.0 - self.model.nll_nats / self.ngram.nll_nats

    def table(self) -> list[dict]:
        """One row per model: name, NLL (nats, bits), perplexity, accuracies, pitch and duration NLL."""
        rows = []
        for name, metrics in ((self.preset, self.model), (f"{self.ngram_order}-gram (Kneser–Ney)", self.ngram),
                              ("unigram", self.unigram)):  # fmt: skip
            rows.append({"model": name, **metrics.to_json()})
        return rows

    def to_json(self) -> dict:
        return {
            "format": "nabiya-corpus-evaluation",
            "model_file": self.model_path,
            "preset": self.preset,
            "part": self.part,
            "tunes": self.tunes,
            "positions": self.positions,
            "model": self.model.to_json(),
            "ngram": {"order": self.ngram_order, **self.ngram.to_json()},
            "unigram": self.unigram.to_json(),
            "nll_below_ngram": self.improvement,
            "samples": None if self.samples is None else self.samples.to_json(),
        }

    def _repr_html_(self) -> str:
        head = ("<tr><th>model</th><th>NLL nats</th><th>NLL bits</th><th>perplexity</th><th>accuracy</th>"
                "<th>pitch acc.</th><th>duration acc.</th></tr>")  # fmt: skip
        body = "".join(
            f"<tr><td>{row['model']}</td><td>{row['nll_nats']:.4f}</td><td>{row['nll_bits']:.4f}</td>"
            f"<td>{row['perplexity']:.2f}</td><td>{row['accuracy']:.1%}</td><td>{row['pitch_accuracy']:.1%}</td>"
            f"<td>{row['duration_accuracy']:.1%}</td></tr>" for row in self.table()
        )
        note = (f"<p>{self.part} split: {self.tunes} tunes, {self.positions:,} scored positions; "
                f"the model's NLL is {100 * self.improvement:.1f}% below the n-gram's.</p>")  # fmt: skip
        samples = "" if self.samples is None else self.samples.tunes._repr_html_()
        return f"<table>{head}{body}</table>{note}{samples}"


def evaluate(
    model,
    corpus=None,
    *,
    part: str = "test",
    samples: int = 0,
    seed: int = 0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> CorpusEvaluation:
    """Score a corpus model and its baselines on the same positions of its test tunes; the twin of ``nabiya evaluate``.

    Args:
        model: a model file, a run folder (its best model), or a loaded :class:`SavedCorpusModel`.
        corpus: the corpus spec to read (default: the one the model was trained on). The split
            is rebuilt with the model's shares and seed, and the tokens with its vocabulary.
        part: ``"test"`` (default) or ``"valid"``.
        samples: also make this many new tunes (drawn conditions, temperature 1) and report on them.
        seed: the seed of those tunes.
        max_tokens: the length limit of a new tune, in tokens.
        out: a folder to write ``evaluation.json`` into (default: the run folder the model is in, if any).
        progress: a progress bar while tunes are read.

    Returns:
        A :class:`CorpusEvaluation`.

    Raises:
        NabiyaError: for a file that is not a corpus model, an unknown or empty corpus, or a split with no tune in ``part``.

    Example:
        >>> report = nabiya.evaluate("runs/folk/model.safetensors", samples=20)    # doctest: +SKIP
        >>> report.model.nll_nats, report.ngram.nll_nats, report.samples.ended_share  # doctest: +SKIP
    """
    from nabiya import ngram
    from nabiya.corpus_train import log_probs_of, make_batches, prepare_data

    if part not in ("test", "valid"):
        raise NabiyaError(f"evaluate on the test or valid part, not {part!r}")
    saved = resolve_model(model)
    config = saved.config
    if corpus is not None:
        sources = (str(corpus),) if isinstance(corpus, (str, os.PathLike)) else tuple(str(c) for c in corpus)
        config = config.replace(sources=sources)
    data = prepare_data(config, vocabulary=saved.vocabulary, progress=progress).tokens
    sequences = data.part(part)
    if not sequences:
        raise NabiyaError(f"the {part} part of the split holds no tune (of {len(data.split.train) + len(data.split.valid) + len(data.split.test)})")
    vocab = data.vocab
    scorer = Scorer(vocab)
    for log_probs, batch in log_probs_of(saved.model, make_batches(config, sequences, vocab.is_scored, shuffle=False).epoch(0)):
        scorer.add(log_probs, batch.targets, batch.score_mask)
    model_metrics = scorer.result()
    expected = data.scored_positions(part)
    if model_metrics.positions != expected:  # the batches must cover every scored position once
        raise RuntimeError(f"scored {model_metrics.positions} positions, not the {expected} of the {part} tunes")
    baseline = ngram.fit(data.train, vocab, validation=data.valid, max_order=NGRAM_MAX_ORDER)
    ngram_metrics = baseline.evaluate(sequences, vocab)
    unigram_metrics = baseline.with_order(1).evaluate(sequences, vocab)
    sample_report = None
    if samples:
        tunes = generate_tunes(saved, count=samples, seed=seed, max_tokens=max_tokens)
        sample_report = _sample_report(tunes, data)
    path = str(saved.path) if saved.path is not None else ""
    report = CorpusEvaluation(
        model=model_metrics, ngram=ngram_metrics, unigram=unigram_metrics, ngram_order=baseline.order, part=part,
        tunes=len(sequences), positions=model_metrics.positions, preset=config.preset, model_path=path,
        samples=sample_report,
    )  # fmt: skip
    folder = Path(out) if out is not None else _run_folder_of(saved)
    if folder is not None:
        from nabiya.fileio import ensure_directory, write_text

        ensure_directory(folder)
        write_text(folder / "evaluation.json", json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n")
    return report


def _run_folder_of(saved: SavedCorpusModel) -> Path | None:
    if saved.path is None:
        return None
    folder = Path(saved.path).parent
    return folder if (folder / "config.json").is_file() else None


def _sample_report(tunes: "GeneratedTunes", data) -> SampleReport:
    from nabiya.ngram import CopyIndex

    index = CopyIndex(data.train, data.vocab)
    copied = tuple(index.longest_copied_run(tokens) for tokens in tunes.tokens)
    test_copied = tuple(index.longest_copied_run(sequence) for sequence in data.test)
    metered = [song for song in tunes.songs if _bar_length(song) is not None]
    whole = sum(1 for song in metered if lasts_whole_bars(song))
    return SampleReport(
        tunes=tunes,
        ended_share=float(np.mean(tunes.ended)) if len(tunes) else 0.0,
        whole_bars_share=whole / len(metered) if metered else 0.0,
        copied_runs=copied,
        test_copied_runs=test_copied,
    )


def _bar_length(song: Song) -> Fraction | None:
    from nabiya.music.notation import bar_quarters, parse_meter

    meter = parse_meter(song.meter)
    return bar_quarters(meter) if meter else None


def lasts_whole_bars(song: Song) -> bool:
    """Whether a tune lasts a whole number of bars of its meter, a pickup allowed.

    A tune with a pickup of ``p`` quarters passes when its length is whole bars (its last
    bar is short by the pickup, as written music does) or its length less ``p`` is.

    Example:
        >>> lasts_whole_bars(Song.from_codes("a8 d4 e8 f#4 d8 d4 a4.", meter="6/8", pickup=Fraction(1, 2)))
        True
    """
    bar = _bar_length(song)
    if bar is None or not song.notes:
        return False
    total = song.duration_quarters
    return total % bar == 0 or (total - song.pickup) % bar == 0


# --- new tunes ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GeneratedTunes:
    """New tunes from a corpus model; they play and show themselves in Jupyter.

    Attributes:
        songs: the tunes (notes, meter, key, pickup, title).
        tokens: each tune's token ids, its prompt included (in the model's tokens).
        ended: ``(N,)`` bool, the tune chose ``<eos>`` before the length limit.
        seed: the seed they were made with.
    """

    songs: tuple[Song, ...]
    tokens: tuple[np.ndarray, ...]
    ended: np.ndarray
    seed: int = 0

    def __len__(self) -> int:
        return len(self.songs)

    def __getitem__(self, index: int) -> Song:
        return self.songs[index]

    def abc(self, index: int = 0) -> str:
        """A tune as ABC text (with ``M:``, ``K:``, ``L:`` and bar lines)."""
        from nabiya.music.abc import song_to_abc

        return song_to_abc(self.songs[index], reference=index + 1)

    def play(self, index: int = 0):
        """An audio player for one tune (IPython's Audio); outside IPython, the WAV bytes."""
        from nabiya.music.audio import wav_bytes

        data = wav_bytes(self.songs[index])
        try:
            from IPython.display import Audio
        except ImportError:
            return data
        return Audio(data=data)

    def write(self, out: str | os.PathLike, *, force: bool = False, audio: bool = True) -> list[Path]:
        """Write every tune as ``tune_01.abc``, ``.mid``, ``.wav``, ``.musicxml`` and ``.svg`` into ``out``
        (``force``: replace an earlier output of nabiya there; ``audio=False``: no WAV)."""
        from nabiya.report import write_songs

        width = max(2, len(str(len(self.songs))))
        songs = {f"tune_{number:0{width}d}": song for number, song in enumerate(self.songs, start=1)}
        return write_songs(songs, out, force=force, audio=audio)

    def to_json(self) -> list[dict]:
        return [{"title": song.title, "meter": song.meter, "key": song.key, "pickup": str(song.pickup),
                 "notes": len(song.notes), "ended": bool(ended), "bars_whole": lasts_whole_bars(song),
                 "codes": song.codes} for song, ended in zip(self.songs, self.ended)]  # fmt: skip

    def _repr_html_(self) -> str:
        from nabiya.music.audio import wav_bytes

        rows = []
        for song, ended in zip(self.songs, self.ended):
            sound = base64.b64encode(wav_bytes(song)).decode("ascii") if song.notes else ""
            player = f'<audio controls src="data:audio/wav;base64,{sound}"></audio>' if sound else ""
            rows.append(f"<tr><td>{song.title}</td><td>{song.meter or '—'}</td><td>{song.key or '—'}</td>"
                        f"<td>{len(song.notes)}</td><td>{'yes' if ended else 'no'}</td><td>{player}</td></tr>")  # fmt: skip
        head = "<tr><th>tune</th><th>meter</th><th>key</th><th>notes</th><th>ended</th><th>listen</th></tr>"
        return f"<table>{head}{''.join(rows)}</table>"


def generate_tunes(
    model,
    count: int = 1,
    *,
    meter: str | None = None,
    key: str | None = None,
    primer: Sequence | None = None,
    strategy=None,
    seed: int = 0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> GeneratedTunes:
    """Make ``count`` whole new tunes in one compiled, batched call.

    Args:
        model: a model file, a run folder, or a :class:`SavedCorpusModel`.
        count: how many tunes.
        meter: ``"6/8"``; None: drawn as often as the training tunes have each.
        key: ``"D"``, ``"D major"``, ``"E dorian"``; None: the mode drawn (with the meter) from the
            training tunes, then a tonic drawn among the training tunes of that mode.
        primer: notes to begin every tune with (then each tune continues them; give their
            ``key``); beam search is allowed with a primer and makes one tune.
        strategy: how to choose each note (default: :class:`~nabiya.generation.Temperature` 1.0,
            plain sampling from the model).
        seed: the same seed gives the same tunes.
        max_tokens: the most tokens a tune gets (``<eos>`` included) before it is cut.

    Returns:
        :class:`GeneratedTunes` (each with meter, key and pickup, so its bar lines fall right).

    Raises:
        NabiyaError: for an unknown meter or key, conditions no training tune had, or bad options.

    Example:
        >>> tunes = nabiya.generate_tunes("runs/folk", count=4, meter="6/8", key="D", seed=1)   # doctest: +SKIP
        >>> tunes.play(0); tunes.write("runs/folk/tunes")                                        # doctest: +SKIP
    """
    from nabiya.generation import Beam, Temperature, beam_search, generate_batch
    from nabiya.music.notation import parse_key, parse_meter
    from nabiya.tokens import EOS, UNK

    saved = resolve_model(model)
    vocab = saved.vocabulary
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= 10_000:
        raise NabiyaError(f"the number of tunes must be a whole number from 1 to 10000, not {count!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) or max_tokens < 2:
        raise NabiyaError(f"the length limit must be a whole number of at least 2 tokens, not {max_tokens!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise NabiyaError(f"the seed must be a whole number from 0 to {2**32 - 1}, not {seed!r}")
    if meter is not None and parse_meter(meter) is None:
        raise NabiyaError(f"{meter!r} is not a meter: write one such as 6/8, 3/4 or 4/4")
    parsed_key = None
    if key is not None:
        parsed_key = parse_key(key if " " in key.strip() else f"{key} major")
        if parsed_key is None:
            raise NabiyaError(f"{key!r} is not a key: write a tonic and a mode, such as D, 'E minor' or 'A dorian'")
    if primer and key is None:
        raise NabiyaError("give the primer's key (--key D, 'E minor', ...): the model reads notes relative to the tonic")
    strategy = strategy or Temperature(1.0)
    rng = np.random.default_rng(seed)
    conditions = [_draw_conditions(saved, rng, meter, parsed_key) for _ in range(count)]
    prompts = []
    for values in conditions:
        song = Song(tuple(primer or ()), meter=values["meter"], key=values["key"], pickup=values["pickup"])
        ids = vocab.encode(song) if primer else vocab.prompt(meter=values["meter"], key=values["key"],
                                                             pickup=values["pickup"])  # fmt: skip
        prompts.append(ids[:-1] if primer else ids)  # a primer's tokens end with <eos>: continue before it
    prompts = np.stack(prompts).astype(np.int32)
    allowed = vocab.is_scored.copy()
    allowed[UNK] = False
    if isinstance(strategy, Beam):
        if not primer or count != 1:
            raise NabiyaError("beam search continues a primer into one tune: give --primer and --count 1 "
                              "(new tunes need sampling: temperature, top-k or top-p)")  # fmt: skip
        tokens, _ = beam_search(saved.model, prompts[0], max_tokens, width=strategy.width, stop_token=EOS)
        tokens = tokens[:1]
        ends = np.flatnonzero(tokens[0] == EOS)
        lengths = np.array([ends[0] + 1 if ends.size else max_tokens])
    else:
        tokens, lengths = generate_batch(saved.model, prompts, max_tokens, strategy=strategy,
                                         key=jax.random.key(seed), stop_token=EOS, allowed=allowed,
                                         min_length=1 if primer is None else 0)  # fmt: skip
    songs, sequences, ended = [], [], []
    for number, (prompt, row, length, values) in enumerate(zip(prompts, tokens, lengths, conditions), start=1):
        new = row[: int(length)]
        sequence = np.concatenate([prompt, new]).astype(np.int32)
        finished = bool(len(new) and new[-1] == EOS)
        tonic = values["tonic"] if vocab.config.transpose else None
        title = f"{saved.config.preset} tune {number} (seed {seed})"
        songs.append(vocab.decode(sequence, tonic=tonic, title=title, unknown="skip"))
        sequences.append(sequence if finished else np.concatenate([sequence, [EOS]]).astype(np.int32))
        ended.append(finished)
    return GeneratedTunes(tuple(songs), tuple(sequences), np.asarray(ended, bool), seed)


def _draw_conditions(saved: SavedCorpusModel, rng: np.random.Generator, meter: str | None, parsed_key) -> dict:
    """``meter``, ``key``, ``pickup`` and ``tonic`` of one new tune: given ones kept, the rest drawn."""
    from nabiya.music.notation import key_name, parse_key
    from nabiya.tokens import UNKNOWN

    vocab = saved.vocabulary
    mode = None
    if parsed_key is not None:
        mode = _MODE_NAMES.get(parsed_key[1], parsed_key[1])
    matching = [(values, count) for values, count in vocab.conditions
                if (meter is None or values[0] == meter) and (mode is None or values[1] == mode)]  # fmt: skip
    if not matching:
        asked = " and ".join(part for part in (meter and f"meter {meter}", mode and f"mode {mode}") if part)
        raise NabiyaError(f"no training tune has {asked}: the model has not learned it")
    counts = np.array([count for _, count in matching], dtype=np.float64)
    drawn_meter, drawn_mode, drawn_tonic, drawn_pickup = matching[int(rng.choice(len(matching), p=counts / counts.sum()))][0]
    drawn_mode = mode or (None if drawn_mode == UNKNOWN else drawn_mode)
    if parsed_key is not None:
        tonic = parsed_key[0]
    elif drawn_tonic and drawn_tonic != UNKNOWN:
        tonic = drawn_tonic
    else:
        tonics = []
        for name, count in saved.keys.items():
            parsed = parse_key(name)
            if parsed and _MODE_NAMES.get(parsed[1], parsed[1]) == drawn_mode:
                tonics.append((parsed[0], count))
        if tonics:
            weights = np.array([count for _, count in tonics], dtype=np.float64)
            tonic = tonics[int(rng.choice(len(tonics), p=weights / weights.sum()))][0]
        else:
            tonic = "C"
    tonic = tonic[0].upper() + tonic[1:]
    key = key_name(tonic, drawn_mode) if drawn_mode else None
    if key is not None and parse_key(key) is None:
        key = None
    pickup = Fraction(drawn_pickup) if drawn_pickup not in ("", UNKNOWN) else Fraction(0)
    return {"meter": None if drawn_meter == UNKNOWN else drawn_meter, "key": key, "pickup": pickup, "tonic": tonic}


def figure_html(figure) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (for ``_repr_html_``); closes the figure."""
    from nabiya.plots import _pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}"/>'
