"""Saving and loading models: exact round trips, in this process and a new one, and bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from nabiya.checkpoint import FORMAT_NAME, FORMAT_VERSION, SavedModel, load_model, read_metadata, save_model
from nabiya.config import preset
from nabiya.data import count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.generation import TopP, generate, predict_windows
from nabiya.models import make_model, trainable
from nabiya.music.songs import nabiya


class Run:
    """A model with every weight random, and what saving it needs.

    Training only moves the weights, and any float32 values must come back bit for bit, so
    the initial weights plus seeded noise (no zero or one biases left) stand in for a
    trained model here: they cost no training compilation. Saving a model trained for the
    tutorial's 2000 epochs is tested in test_generate.py.
    """

    def __init__(self, preset_name: str):
        self.song = nabiya()
        self.vocabulary = Vocabulary.for_notes(self.song.notes)
        self.indices = self.vocabulary.encode(self.song.notes)
        self.config = preset(preset_name)
        self.windows = make_windows(self.indices, self.config.window)
        self.table = self.vocabulary.feature_table(self.config.model.features)
        self.n_classes = count_classes(self.windows)
        model = make_model(
            self.config.model, feature_table=self.table, window=self.config.window,
            n_classes=self.n_classes, key=jax.random.key(self.config.seed),
        )  # fmt: skip
        params, static = eqx.partition(model, trainable(model))
        leaves, treedef = jax.tree_util.tree_flatten(params)
        noise = np.random.default_rng(self.config.seed)
        leaves = [
            jax.numpy.asarray(np.asarray(leaf) + noise.normal(0.0, 0.1, leaf.shape).astype(np.float32))
            for leaf in leaves
        ]
        self.model = eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)
        self.summary = {"epochs": 2000, "final_loss": np.float32(0.25), "losses": np.array([1.5, 0.25])}

    def save(self, path, **changes) -> Path:
        arguments = dict(config=self.config, vocabulary=self.vocabulary, song=self.song, summary=self.summary)
        return save_model(path, changes.pop("model", self.model), **{**arguments, **changes})

    def inputs(self) -> np.ndarray:
        return self.windows.inputs


@pytest.fixture(scope="module")
def run() -> Run:
    return Run("stateful2")


@pytest.fixture(scope="module")
def saved_file(run, tmp_path_factory) -> Path:
    return run.save(tmp_path_factory.mktemp("model") / "nabiya.safetensors")


def _arrays(model):
    return jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))


def test_round_trip_gives_identical_weights_and_predictions(run, saved_file):
    saved = load_model(saved_file)
    assert isinstance(saved, SavedModel)
    (before, before_tree), (after, after_tree) = _arrays(run.model), _arrays(saved.model)
    assert before_tree == after_tree
    for (path, original), (_, loaded) in zip(before, after):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape, path
        assert np.array_equal(np.asarray(loaded), np.asarray(original)), path
    assert saved.config == run.config
    assert saved.vocabulary == run.vocabulary
    assert np.array_equal(saved.feature_table, run.table)
    assert (saved.n_classes, saved.n_features, saved.window, saved.stateful) == (run.n_classes, 2, 4, True)
    assert saved.song.codes == run.song.codes and saved.song.title == "나비야 (Butterfly)"
    assert saved.song.tempo_bpm == run.song.tempo_bpm
    assert saved.summary == {"epochs": 2000, "final_loss": 0.25, "losses": [1.5, 0.25]}
    assert saved.format_version == FORMAT_VERSION and saved.path == saved_file
    inputs = run.inputs()
    assert np.array_equal(predict_windows(saved.model, inputs), predict_windows(run.model, inputs))
    primer, key = run.indices[:4], jax.random.key(3)
    assert np.array_equal(
        generate(saved.model, primer, 30, strategy=TopP(0.9), key=key),
        generate(run.model, primer, 30, strategy=TopP(0.9), key=key),
    )


def test_an_mlp_round_trips_too(tmp_path):
    mlp = Run("mlp")  # its arrays sit in a list: names with indices
    saved = load_model(mlp.save(tmp_path / "mlp.safetensors"))
    names = sorted(safetensors.numpy.load_file(tmp_path / "mlp.safetensors"))
    assert names == ["features"] + [f"mlp.layers.{i}.{kind}" for i in range(3) for kind in ("bias", "weight")]
    assert not saved.stateful
    inputs = mlp.inputs()
    assert np.array_equal(predict_windows(saved.model, inputs), predict_windows(mlp.model, inputs))


def test_the_file_is_plain_safetensors_with_the_metadata_in_its_header(saved_file, run):
    with safetensors.safe_open(str(saved_file), framework="numpy") as file:
        metadata = file.metadata()
        assert sorted(file.keys()) == [
            "cell.bias", "cell.weight_hh", "cell.weight_ih", "features", "head.bias", "head.weight"
        ]  # fmt: skip
    assert metadata["format"] == FORMAT_NAME and metadata["format_version"] == str(FORMAT_VERSION)
    document = json.loads(metadata["nabiya"])
    assert document["config"] == run.config.to_json()
    assert document["vocabulary"] == run.vocabulary.to_json()
    assert (document["n_features"], document["n_classes"], document["window"]) == (2, 12, 4)
    assert read_metadata(saved_file) == document


@pytest.mark.slow
def test_a_new_process_predicts_exactly_the_same(run, saved_file, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import jax, numpy as np
        from nabiya.checkpoint import load_model
        from nabiya.generation import TopP, generate, predict_windows
        saved = load_model(sys.argv[1])
        indices = saved.vocabulary.encode(saved.song.notes)
        windows = np.stack([indices[i : i + 4] for i in range(len(indices) - 4)])
        np.save(sys.argv[2] + "/logits.npy", predict_windows(saved.model, windows))
        np.save(sys.argv[2] + "/sampled.npy", generate(saved.model, indices[:4], 30, strategy=TopP(0.9),
                key=jax.random.key(3)))
        """
    )
    subprocess.run([sys.executable, "-c", script, str(saved_file), str(tmp_path)], check=True, timeout=120)
    assert np.array_equal(np.load(tmp_path / "logits.npy"), predict_windows(run.model, run.inputs()))
    assert np.array_equal(
        np.load(tmp_path / "sampled.npy"),
        generate(run.model, run.indices[:4], 30, strategy=TopP(0.9), key=jax.random.key(3)),
    )


# --- bad files --------------------------------------------------------------------------


def _rewrite(source: Path, target: Path, *, tensors=None, metadata=None) -> Path:
    """A copy of a saved model with its tensors and/or metadata changed by functions."""
    arrays = safetensors.numpy.load_file(source)
    with safetensors.safe_open(str(source), framework="numpy") as file:
        header = dict(file.metadata())
    arrays = tensors(arrays) if tensors else arrays
    header = metadata(header) if metadata else header
    safetensors.numpy.save_file(arrays, target, metadata=header)
    return target


def _with_document(change):
    def rewrite(header):
        document = json.loads(header["nabiya"])
        change(document)
        return {**header, "nabiya": json.dumps(document)}

    return rewrite


def _flip_weight_byte(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-100] ^= 0x10  # inside the last tensor's bytes
    return bytes(flipped)


BYTE_CASES = {
    "empty": (lambda data: b"", "empty"),
    "truncated": (lambda data: data[: len(data) // 2], "truncated"),
    "truncated in its header": (lambda data: data[:40], "truncated"),
    "text": (lambda data: b"g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4\n" * 3, "not a nabiya model"),
    "flipped weight bit": (_flip_weight_byte, "weights are corrupt"),
    "garbage header": (lambda data: data[:8] + b"{" + b"\xff" * 30 + data[39:], "header is corrupt"),
    "trailing bytes": (lambda data: data + b"\0" * 16, "corrupt"),
}


@pytest.mark.parametrize("case", list(BYTE_CASES))
def test_a_damaged_file_is_a_one_line_error_naming_it(case, saved_file, tmp_path):
    damage, problem = BYTE_CASES[case]
    bad = tmp_path / f"{case.replace(' ', '-')}.safetensors"
    bad.write_bytes(damage(saved_file.read_bytes()))
    _assert_load_fails(bad, problem)


REWRITE_CASES = {
    "not a nabiya model": (dict(metadata=lambda header: {"format": "pt"}), "not a nabiya model"),
    "no metadata": (dict(metadata=lambda header: None), "not a nabiya model"),
    "newer format": (
        dict(metadata=lambda header: {**header, "format_version": str(FORMAT_VERSION + 1)}), "newer nabiya"
    ),
    "unknown format version": (dict(metadata=lambda header: {**header, "format_version": "one"}), "format version"),
    "corrupt metadata JSON": (dict(metadata=lambda header: {**header, "nabiya": "{not json"}), "metadata is corrupt"),
    "metadata without config": (dict(metadata=_with_document(lambda d: d.pop("config"))), "'config'"),
    "invalid config": (
        dict(metadata=_with_document(lambda d: d["config"]["model"].update(kind="gru"))),
        "unknown model kind",
    ),
    "missing tensor": (
        dict(tensors=lambda t: {k: v for k, v in t.items() if k != "head.bias"}),
        "missing tensor 'head.bias'",
    ),
    "extra tensor": (
        dict(tensors=lambda t: {**t, "head.scale": np.ones(3, np.float32)}),
        "unexpected tensor 'head.scale'",
    ),
    "shape mismatch": (
        dict(tensors=lambda t: {**t, "head.bias": np.zeros(13, np.float32)}),
        "tensor 'head.bias' has shape (13,), the model needs (12,)",
    ),
    "dtype mismatch": (
        dict(tensors=lambda t: {**t, "head.bias": t["head.bias"].astype(np.float64)}),
        "tensor 'head.bias' is float64, the model needs float32",
    ),
    "changed weights": (
        dict(tensors=lambda t: {**t, "head.bias": t["head.bias"] + np.float32(1)}),
        "weights are corrupt",
    ),
}


@pytest.mark.parametrize("case", list(REWRITE_CASES))
def test_a_wrong_file_is_a_one_line_error_naming_it(case, saved_file, tmp_path):
    changes, problem = REWRITE_CASES[case]
    bad = _rewrite(saved_file, tmp_path / f"{case.replace(' ', '-')}.safetensors", **changes)
    _assert_load_fails(bad, problem)


def test_a_missing_file_or_a_folder_is_an_error_naming_it(tmp_path):
    _assert_load_fails(tmp_path / "nowhere.safetensors", "no such file")
    _assert_load_fails(tmp_path, "folder")


def _assert_load_fails(path: Path, problem: str) -> None:
    with pytest.raises(NabiyaError) as caught:
        load_model(path)
    message = str(caught.value)
    assert str(path) in message and problem in message, message
    assert "\n" not in message
    # No chained traceback from safetensors or json for the CLI to show.
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


# --- saving never leaves a half-written file ------------------------------------------------


def test_saving_into_an_unwritable_place_writes_nothing(run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(NabiyaError, match="cannot write to folder"):
        run.save(blocker / "model.safetensors")
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_one(run, saved_file, tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"the previous model")
    real_write_bytes = Path.write_bytes

    def disk_full(self, data):
        real_write_bytes(self, data[: len(data) // 3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(NabiyaError, match="No space left on device") as caught:
        run.save(target)
    assert str(target) in str(caught.value)
    monkeypatch.undo()
    assert target.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.slow
def test_a_model_that_does_not_match_its_config_is_not_saved(run, tmp_path):
    index_model = make_model(
        preset("stateful").model, feature_table=run.vocabulary.feature_table("index"), window=4,
        n_classes=run.n_classes, key=jax.random.key(0),
    )  # fmt: skip
    with pytest.raises(NabiyaError, match="does not read its tokens through the 'pitch_length' features"):
        run.save(tmp_path / "model.safetensors", model=index_model)
    stateless = make_model(
        preset("lstm").model, feature_table=run.table, window=4, n_classes=run.n_classes, key=jax.random.key(0)
    )
    with pytest.raises(NabiyaError, match="statefulness differs from its config's"):
        run.save(tmp_path / "model.safetensors", model=stateless)
    assert list(tmp_path.iterdir()) == []


def test_a_model_file_of_format_version_1_still_loads(run, saved_file, tmp_path):
    """nabiya 0.1 wrote no feature table and kept ``stateful`` in the train config."""
    from nabiya.checkpoint import _digest

    def as_version_1(header):
        document = json.loads(header["nabiya"])
        document["config"]["train"]["stateful"] = document["config"]["model"].pop("stateful")
        tensors = {k: v for k, v in safetensors.numpy.load_file(saved_file).items() if k != "features"}
        document["weights_sha256"] = _digest(tensors)
        return {**header, "format_version": "1", "nabiya": json.dumps(document)}

    old = _rewrite(saved_file, tmp_path / "old.safetensors", metadata=as_version_1,
                   tensors=lambda t: {k: v for k, v in t.items() if k != "features"})  # fmt: skip
    saved = load_model(old)
    assert saved.format_version == 1 and saved.stateful and saved.config == run.config
    assert np.array_equal(predict_windows(saved.model, run.inputs()), predict_windows(run.model, run.inputs()))


def test_saving_over_a_model_replaces_it(run, saved_file, tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    run.save(target, summary={"note": "second"})
    assert load_model(target).summary == {"note": "second"}
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]
