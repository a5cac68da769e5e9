"""Frozen, typed configurations, and the tutorial's four models as named presets.

A preset is a value (a :class:`RunConfig`); ``preset("stateful2").replace(epochs=500)``
makes a variant. Every run writes its config next to its outputs.

Limits: what a run, a generation or a model file may ask for, checked before any work
(the limits of songs and song files live in :mod:`nabiya.music.limits`). Past them a value
is a typo or an attack, and would exhaust memory or run for days:

======================  ====================================  ========================
limit                   value                                 why
======================  ====================================  ========================
``MAX_EPOCHS``          100,000 (50 times the tutorial's)     histories of every epoch
``MAX_SEED``            2**32 - 1 (seeds are 0 … 2**32 - 1)   JAX keeps 32 bits: 2**32
                                                              would silently be seed 0
``MAX_HIDDEN_SIZE``     4,096 units                           memory of the weights
``MAX_WINDOW``          1,024 notes                           memory of a window
``MAX_GENERATE_NOTES``  100,000 (a song's limit)              the generated song
``MAX_BEAM_WIDTH``      1,024 beams                           memory of beam search
``MAX_TOP_K``           100,000 (above the vocabulary: all)   a 32-bit index
``MAX_AUDIO_SECONDS``   1,200 s (20 minutes, ~53 MB of WAV)   a run folder's size
``MAX_MODEL_BYTES``     1 GiB                                 reading a model file
======================  ====================================  ========================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from nabiya.encoding import FEATURE_ENCODINGS
from nabiya.music.limits import MAX_AUDIO_SECONDS  # noqa: F401  (one limit, kept by the music layer)
from nabiya.errors import NabiyaError

MODEL_KINDS = ("mlp", "lstm")

MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1
MAX_HIDDEN_SIZE = 4096
MAX_WINDOW = 1024
MAX_GENERATE_NOTES = 100_000
MAX_BEAM_WIDTH = 1024
MAX_TOP_K = 100_000
MAX_MODEL_BYTES = 1 << 30


def check_whole_number(value, name: str, *, minimum: int, maximum: int) -> int:
    """``value`` as an int, if it is a whole number (not a bool) in ``minimum … maximum``.

    Raises:
        NabiyaError: naming ``name``, the value (shortened) and the range.

    Example:
        >>> check_whole_number(5, "the seed", minimum=0, maximum=MAX_SEED)
        5
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value <= maximum:
        raise NabiyaError(f"{name} must be a whole number from {minimum} to {maximum}, not {_short(value)}")
    return int(value)


def _short(value) -> str:
    text = repr(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    return text if len(text) <= 30 else f"{text[:12]}…{text[-6:]} ({len(text)} characters)"


@dataclass(frozen=True)
class ModelConfig:
    """What network to build.

    Attributes:
        kind: ``'mlp'`` (Dense 128-128 relu over the flattened window) or ``'lstm'``
            (one LSTM layer over the window's notes, then a Dense softmax layer).
        hidden_size: units per hidden layer (128 in the tutorial).
        features: the feature encoding of each note, one of ``FEATURE_ENCODINGS``.
        stateful: carry the LSTM state from one window to the next, in song order, in
            training (resetting it at each epoch: Keras's ``stateful=True`` with
            ``reset_states()``), evaluation and generation alike.
    """

    kind: str = "lstm"
    hidden_size: int = 128
    features: str = "index"
    stateful: bool = False

    def validate(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in MODEL_KINDS:
            raise NabiyaError(f"unknown model kind {self.kind!r}: choose one of {', '.join(MODEL_KINDS)}")
        check_whole_number(self.hidden_size, "the hidden size", minimum=1, maximum=MAX_HIDDEN_SIZE)
        if not isinstance(self.stateful, bool):
            raise NabiyaError(f"stateful must be true or false, not {self.stateful!r}")
        if not isinstance(self.features, str) or self.features not in FEATURE_ENCODINGS:
            raise NabiyaError(
                f"unknown feature encoding {self.features!r}: choose one of {', '.join(FEATURE_ENCODINGS)}"
            )
        if self.stateful and self.kind == "mlp":
            raise NabiyaError("only an LSTM can be stateful: an MLP has no state to carry")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: Keras's defaults where the tutorial relied on them.

    Attributes:
        epochs: passes over the song (2000 in the tutorial).
        batch_size: windows per gradient step (10 for the MLP, 14 for the LSTM, 1 for a
            stateful model, whose windows go in song order).
        shuffle: shuffle the windows each epoch (Keras's ``fit`` default; never for a stateful model).
        learning_rate, beta1, beta2, epsilon: Adam, as Keras's defaults.
        epochs_per_block: epochs compiled into one call; progress is reported between blocks.
    """

    epochs: int = 2000
    batch_size: int = 1
    shuffle: bool = True
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    epochs_per_block: int = 100

    def validate(self) -> None:
        if isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs < 1:
            raise NabiyaError(f"epochs must be at least 1, not {self.epochs}")
        check_whole_number(self.epochs, "epochs", minimum=1, maximum=MAX_EPOCHS)
        check_whole_number(self.batch_size, "the batch size", minimum=1, maximum=MAX_GENERATE_NOTES)
        if not isinstance(self.shuffle, bool):
            raise NabiyaError(f"shuffle must be true or false, not {self.shuffle!r}")
        for name in ("learning_rate", "beta1", "beta2", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise NabiyaError(f"{name.replace('_', ' ')} must be a finite number, not {_short(value)}")
        if self.learning_rate <= 0:
            raise NabiyaError(f"learning rate must be positive, not {self.learning_rate}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.epsilon > 0):
            raise NabiyaError("Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0")
        check_whole_number(self.epochs_per_block, "epochs per block", minimum=1, maximum=MAX_EPOCHS)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the song.

    Attributes:
        preset: the preset this config came from (a label).
        model, train: see :class:`ModelConfig` and :class:`TrainConfig`.
        window: notes per input (4 in the tutorial).
        seed: the one seed; every random key of the run is split from it.
    """

    preset: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    window: int = 4
    seed: int = 5

    def validate(self) -> "RunConfig":
        if not isinstance(self.model, ModelConfig) or not isinstance(self.train, TrainConfig):
            raise NabiyaError("a run config needs a ModelConfig and a TrainConfig")
        self.model.validate()
        self.train.validate()
        if isinstance(self.window, int) and not isinstance(self.window, bool) and self.window < 1:
            raise NabiyaError(f"the window must be at least 1 note, not {self.window}")
        check_whole_number(self.window, "the window", minimum=1, maximum=MAX_WINDOW)
        # JAX keeps 32 bits of a seed: 2**32 would silently be seed 0, so the range is refused beyond.
        check_whole_number(self.seed, "the seed", minimum=0, maximum=MAX_SEED)
        if not isinstance(self.preset, str):
            raise NabiyaError(f"a preset's name is text, not {_short(self.preset)}")
        if self.model.stateful and (self.train.batch_size != 1 or self.train.shuffle):
            raise NabiyaError("a stateful model trains with batch size 1 and no shuffling: its windows go in song order")
        return self

    def replace(self, *, epochs: int | None = None, seed: int | None = None, **changes) -> "RunConfig":
        """A copy with some fields changed; ``epochs`` reaches into ``train``.

        Example:
            >>> preset("stateful2").replace(epochs=10).train.epochs
            10
        """
        config = dataclasses.replace(self, **changes)
        if epochs is not None:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))
        if seed is not None:
            config = dataclasses.replace(config, seed=seed)
        return config.validate()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunConfig":
        """The config :meth:`to_json` wrote; also reads nabiya 0.1's, whose ``stateful`` was in ``train``."""
        model, train = dict(data["model"]), dict(data["train"])
        if "stateful" in train:
            model.setdefault("stateful", train.pop("stateful"))
        return cls(
            preset=data["preset"],
            model=ModelConfig(**model),
            train=TrainConfig(**train),
            window=data["window"],
            seed=data["seed"],
        ).validate()


PRESETS: dict[str, RunConfig] = {
    "mlp": RunConfig(
        preset="mlp",
        model=ModelConfig(kind="mlp", features="index"),
        train=TrainConfig(batch_size=10),
    ),
    "lstm": RunConfig(
        preset="lstm",
        model=ModelConfig(kind="lstm", features="index"),
        train=TrainConfig(batch_size=14),
    ),
    "stateful": RunConfig(
        preset="stateful",
        model=ModelConfig(kind="lstm", features="index", stateful=True),
        train=TrainConfig(batch_size=1, shuffle=False),
    ),
    "stateful2": RunConfig(
        preset="stateful2",
        model=ModelConfig(kind="lstm", features="pitch_length", stateful=True),
        train=TrainConfig(batch_size=1, shuffle=False),
    ),
}

PRESET_DESCRIPTIONS = {
    "mlp": "Dense 128-128 relu over the 4 note indices / 13, batch 10",
    "lstm": "LSTM(128) reading the 4 notes as a sequence, batch 14",
    "stateful": "stateful LSTM(128), batch 1, state carried window to window",
    "stateful2": "stateful LSTM(128) with two features per note (pitch / 6, length code)",
}


def preset(name: str) -> RunConfig:
    """The named preset: ``'mlp'``, ``'lstm'``, ``'stateful'`` or ``'stateful2'``.

    Raises:
        NabiyaError: for an unknown name, listing the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise NabiyaError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
