"""Frozen, typed configurations of corpus models and their training, and the two named presets.

A corpus run is described by one :class:`CorpusRunConfig`: what corpus and split
(:class:`CorpusSpec`), how tunes become tokens (:class:`nabiya.tokens.TokenConfig`), what
network (:class:`CorpusModelConfig`) and how it is trained (:class:`CorpusTrainConfig`).
Every run writes its config as ``config.json``; a run is resumed only with the same one.

The presets (sizes chosen by measurement on a 2-core CPU within a 15-minute budget; see
the README's *Learning from a corpus*):

- ``folk-lstm``: embedding → stacked LSTM with dropout → head, trained by truncated
  backpropagation through time (tunes side by side in streams, the state carried from
  chunk to chunk, reset at each tune's start);
- ``folk-transformer``: a small decoder-only causal transformer (pre-LN blocks, learned
  positions), trained on rows packed with whole tunes (:class:`nabiya.batches.PackedWindows`).

Example:
    >>> corpus_preset("folk-lstm").replace(steps=100).train.steps
    100
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from nabiya.errors import NabiyaError
from nabiya.tokens import TokenConfig

CORPUS_MODEL_KINDS = ("lstm", "transformer")


@dataclass(frozen=True)
class CorpusModelConfig:
    """What network to build for a corpus.

    Attributes:
        kind: ``"lstm"`` or ``"transformer"``.
        size: the LSTM's hidden units per layer, or the transformer's model width ``D``.
        layers: stacked LSTM layers, or transformer blocks.
        embedding_size: the LSTM's token embedding width (the transformer's is ``size``).
        dropout: the drop rate on every non-recurrent connection (training only).
        heads: attention heads (transformer; ``size`` must divide by it).
        context: tokens the transformer attends over (its window); ignored by the LSTM,
            whose window is 1 and whose memory is its state.
        mlp_ratio: the transformer's feed-forward width, as a multiple of ``size``.
        tied: the head's weights are the embedding's (Press & Wolf 2017): each token has one
            vector, learned from both where it is read and where it is predicted. The LSTM
            then needs ``embedding_size == size``.
        factored: a note token's input vector and head row are each the sum of the token's
            own, its pitch's and its duration's (shared by every token of that pitch, or of
            that duration), so what is learned of a pitch or a duration is shared by all its
            tokens, rare ones included.
    """

    kind: str = "lstm"
    size: int = 512
    layers: int = 2
    embedding_size: int = 128
    dropout: float = 0.1
    heads: int = 4
    context: int = 256
    mlp_ratio: int = 4
    tied: bool = False
    factored: bool = False

    def validate(self) -> "CorpusModelConfig":
        if self.kind not in CORPUS_MODEL_KINDS:
            raise NabiyaError(f"unknown corpus model kind {self.kind!r}: choose one of {', '.join(CORPUS_MODEL_KINDS)}")
        for name in ("size", "layers", "embedding_size", "heads", "context", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NabiyaError(f"the model's {name.replace('_', ' ')} must be a whole number of at least 1, not {value!r}")
        if not 0 <= self.dropout < 1:
            raise NabiyaError(f"dropout is a rate from 0 up to (not including) 1, not {self.dropout!r}")
        if self.tied and self.kind == "lstm" and self.embedding_size != self.size:
            raise NabiyaError(f"a tied LSTM's embedding size ({self.embedding_size}) must be its size ({self.size}): "
                              "its embedding is also its head")  # fmt: skip
        if self.kind == "transformer" and self.size % self.heads:
            raise NabiyaError(f"a transformer's size ({self.size}) must divide by its heads ({self.heads})")
        return self

    @property
    def window(self) -> int:
        """Tokens the model reads at a time: 1 for the LSTM, ``context`` for the transformer."""
        return 1 if self.kind == "lstm" else self.context


@dataclass(frozen=True)
class CorpusTrainConfig:
    """How a corpus model is trained.

    Attributes:
        steps: optimizer steps; the learning rate warms up, then decays (cosine) over them.
        batch_size: B, rows per step (tunes side by side); axis 0 of every batch array.
        length: T, positions per row: the LSTM's truncation length (a chunk), or the
            transformer's row (at most its context).
        learning_rate: the peak learning rate (AdamW).
        warmup_steps: steps of linear warm-up from 0.
        final_learning_rate: the fraction of the peak left at the last step.
        weight_decay: AdamW's decoupled weight decay (on matrices only, not biases, norms).
        clip_norm: the global gradient norm is clipped to this.
        beta2: Adam's second-moment decay.
        steps_per_block: steps compiled into one call (one ``lax.scan``); progress,
            validation and checkpoints happen between blocks.
        validate_every: steps between validations (a multiple of ``steps_per_block``).
        checkpoint_every: steps between checkpoints (a multiple of ``steps_per_block``).
        patience: stop after this many validations without a new best (0: never stop early).
        seed: the one seed of initialisation, dropout and the order of tunes.
    """

    steps: int = 2000
    batch_size: int = 32
    length: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    final_learning_rate: float = 0.05
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    beta2: float = 0.99
    steps_per_block: int = 10
    validate_every: int = 200
    checkpoint_every: int = 200
    patience: int = 0
    seed: int = 0

    def validate(self) -> "CorpusTrainConfig":
        for name in ("steps", "batch_size", "length", "steps_per_block", "validate_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NabiyaError(f"{name.replace('_', ' ')} must be a whole number of at least 1, not {value!r}")
        for name in ("warmup_steps", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise NabiyaError(f"{name.replace('_', ' ')} must be a whole number of at least 0, not {value!r}")
        if not self.learning_rate > 0:
            raise NabiyaError(f"the learning rate must be above 0, not {self.learning_rate!r}")
        if not 0 <= self.final_learning_rate <= 1:
            raise NabiyaError(f"the final learning rate is a fraction of the peak, 0 to 1, not {self.final_learning_rate!r}")
        if not self.weight_decay >= 0 or not self.clip_norm > 0 or not 0 < self.beta2 < 1:
            raise NabiyaError("weight decay must be at least 0, the clipping norm above 0 and beta2 in (0, 1)")
        for name in ("validate_every", "checkpoint_every"):
            if getattr(self, name) % self.steps_per_block:
                raise NabiyaError(f"{name.replace('_', ' ')} ({getattr(self, name)}) must be a multiple of the "
                                  f"steps per block ({self.steps_per_block})")  # fmt: skip
        if not 0 <= self.seed < 2**32:
            raise NabiyaError(f"the seed must be a whole number from 0 to {2**32 - 1}, not {self.seed!r}")
        return self


@dataclass(frozen=True)
class CorpusSpec:
    """Which tunes, and which of them are for training, validation and test.

    Attributes:
        sources: the corpus spec (book names, folders, files; see :func:`nabiya.load_corpus`);
            empty for the default corpus.
        min_notes: shorter tunes are skipped.
        split: shares of tunes for training, validation and test.
        split_seed: another seed, another split.
    """

    sources: tuple[str, ...] = ()
    min_notes: int = 8
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)
    split_seed: int = 0

    def __post_init__(self) -> None:
        sources = (self.sources,) if isinstance(self.sources, str) else tuple(str(s) for s in self.sources)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "split", tuple(float(share) for share in self.split))


@dataclass(frozen=True)
class CorpusRunConfig:
    """Everything a corpus run needs.

    Attributes:
        preset: the preset it came from (a label).
        model, train, tokens, corpus: see the classes above and :class:`~nabiya.tokens.TokenConfig`.
    """

    preset: str = "custom"
    model: CorpusModelConfig = field(default_factory=CorpusModelConfig)
    train: CorpusTrainConfig = field(default_factory=CorpusTrainConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    corpus: CorpusSpec = field(default_factory=CorpusSpec)

    def validate(self) -> "CorpusRunConfig":
        self.model.validate()
        self.train.validate()
        if self.model.kind == "transformer" and self.train.length > self.model.context:
            raise NabiyaError(f"a transformer row ({self.train.length} positions) cannot be longer than its context "
                              f"({self.model.context})")  # fmt: skip
        return self

    def replace(self, **changes) -> "CorpusRunConfig":
        """A copy with fields changed; training, model, token and corpus fields are reached by name.

        Example:
            >>> corpus_preset("folk-transformer").replace(steps=50, size=64, seed=3).model.size
            64
        """
        parts = {"model": {}, "train": {}, "tokens": {}, "corpus": {}}
        top = {}
        for name, value in changes.items():
            for part, kind in (("model", CorpusModelConfig), ("train", CorpusTrainConfig),
                               ("tokens", TokenConfig), ("corpus", CorpusSpec)):  # fmt: skip
                if name in {f.name for f in dataclasses.fields(kind)}:
                    parts[part][name] = value
                    break
            else:
                if name not in ("preset",):
                    raise NabiyaError(f"a corpus run has no setting {name!r}")
                top[name] = value
        config = dataclasses.replace(self, **top, **{
            part: dataclasses.replace(getattr(self, part), **values) for part, values in parts.items() if values
        })  # fmt: skip
        return config.validate()

    def to_json(self) -> dict:
        return {
            "format": "nabiya-corpus-run",
            "preset": self.preset,
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train),
            "tokens": self.tokens.to_json(),
            "corpus": {**dataclasses.asdict(self.corpus), "sources": list(self.corpus.sources),
                       "split": list(self.corpus.split)},  # fmt: skip
        }

    @classmethod
    def from_json(cls, data: dict) -> "CorpusRunConfig":
        """Raises:
        NabiyaError: for JSON that is not such a config."""
        try:
            if data.get("format") != "nabiya-corpus-run":
                raise ValueError("not a corpus run's config")
            corpus = dict(data["corpus"])
            return cls(
                preset=str(data["preset"]),
                model=CorpusModelConfig(**data["model"]),
                train=CorpusTrainConfig(**data["train"]),
                tokens=TokenConfig.from_json(data["tokens"]),
                corpus=CorpusSpec(tuple(corpus["sources"]), int(corpus["min_notes"]), tuple(corpus["split"]),
                                  int(corpus["split_seed"])),  # fmt: skip
            ).validate()
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, NabiyaError):
                raise
            raise NabiyaError(f"not a nabiya corpus run config: {error}") from None

    def differences(self, other: "CorpusRunConfig") -> list[tuple[str, object, object]]:
        """``[("train.steps", 200, 100), ...]``: each setting that differs, with this config's and ``other``'s value.

        Example:
            >>> corpus_preset("folk-lstm").replace(steps=50).differences(corpus_preset("folk-lstm"))
            [('train.steps', 50, 1300)]
        """
        order = ("preset", "model.", "train.", "tokens.", "corpus.")  # the likeliest cause first

        def cause(difference) -> int:
            return next((rank for rank, part in enumerate(order) if difference[0].startswith(part)), len(order))

        return sorted(json_differences(self.to_json(), other.to_json()), key=cause)  # stable: by name within


def json_differences(first, second, prefix: str = "") -> list[tuple[str, object, object]]:
    """``[("train.steps", 40, 41), ...]``: the places where two JSON values differ, dotted, in name order.

    Example:
        >>> json_differences({"train": {"steps": 40, "seed": 0}}, {"train": {"steps": 41, "seed": 0}})
        [('train.steps', 40, 41)]
    """
    if isinstance(first, dict) and isinstance(second, dict):
        found = []
        for key in sorted(set(first) | set(second), key=str):
            found += json_differences(first.get(key), second.get(key), f"{prefix}{key}.")
        return found
    return [] if first == second else [(prefix.rstrip(".") or "value", first, second)]


CORPUS_PRESETS: dict[str, CorpusRunConfig] = {
    "folk-lstm": CorpusRunConfig(
        preset="folk-lstm",
        model=CorpusModelConfig(kind="lstm", size=256, layers=2, embedding_size=128, dropout=0.1, factored=True),
        train=CorpusTrainConfig(steps=1300, batch_size=32, length=128, learning_rate=3e-3, warmup_steps=100,
                                weight_decay=0.0, validate_every=100, checkpoint_every=100),
    ),
    "folk-transformer": CorpusRunConfig(
        preset="folk-transformer",
        model=CorpusModelConfig(kind="transformer", size=128, layers=4, heads=4, context=256, dropout=0.1, tied=True,
                                factored=True),
        train=CorpusTrainConfig(steps=1000, batch_size=16, length=256, learning_rate=2e-3, warmup_steps=100,
                                weight_decay=0.1, validate_every=100, checkpoint_every=100),
    ),
}

CORPUS_PRESET_DESCRIPTIONS = {
    "folk-lstm": "factored embedding 128 → 2 × LSTM(256), dropout 0.1 → factored head; TBPTT, 32 streams × 128",
    "folk-transformer": "decoder-only transformer: 4 pre-LN blocks of width 128, 4 heads, context 256, tied head",
}

DEFAULT_CORPUS_PRESET = "folk-lstm"


def corpus_preset(name: str) -> CorpusRunConfig:
    """The named corpus preset, ``"folk-lstm"`` or ``"folk-transformer"``.

    Raises:
        NabiyaError: for an unknown name, listing the known ones.
    """
    try:
        return CORPUS_PRESETS[name]
    except KeyError:
        raise NabiyaError(f"unknown corpus preset {name!r}: choose one of {', '.join(CORPUS_PRESETS)}") from None
