"""Frozen, typed configurations, and the tutorial's four models as named presets.

A preset is a value (a :class:`RunConfig`); ``preset("stateful2").replace(epochs=500)``
makes a variant. Every run writes its config next to its outputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from nabiya.encoding import FEATURE_ENCODINGS
from nabiya.errors import NabiyaError

MODEL_KINDS = ("mlp", "lstm")


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
        if self.kind not in MODEL_KINDS:
            raise NabiyaError(f"unknown model kind {self.kind!r}: choose one of {', '.join(MODEL_KINDS)}")
        if self.hidden_size < 1:
            raise NabiyaError(f"hidden size must be at least 1, not {self.hidden_size}")
        if self.features not in FEATURE_ENCODINGS:
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
        if self.epochs < 1:
            raise NabiyaError(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise NabiyaError(f"batch size must be at least 1, not {self.batch_size}")
        if self.learning_rate <= 0:
            raise NabiyaError(f"learning rate must be positive, not {self.learning_rate}")
        if self.epochs_per_block < 1:
            raise NabiyaError(f"epochs per block must be at least 1, not {self.epochs_per_block}")


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
        self.model.validate()
        self.train.validate()
        if self.window < 1:
            raise NabiyaError(f"the window must be at least 1 note, not {self.window}")
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
