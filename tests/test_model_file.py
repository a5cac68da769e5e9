"""The model file format 3: checksums over header and weights, a schema per family, and fuzzed headers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_files import read_model, rewrite_model
from nabiya.checkpoint import FAMILIES, FORMAT_VERSION, ModelFamily, load_model, register_family, write_model_file
from nabiya.errors import NabiyaError

TIME_BOUND_SECONDS = 5.0


def test_one_changed_byte_of_the_vocabulary_is_refused(tmp_path):
    """d8 -> d2 in the header once loaded and played wrong notes with exit status 0 (issue 8.8): with the
    index features the feature table does not change, so only the checksum over the header can tell."""
    from conftest import save_untrained_model

    model = save_untrained_model("stateful", tmp_path / "stateful.safetensors")
    edit = dict(text=lambda body: body.replace('"d8"', '"d2"'))
    resigned = rewrite_model(model, tmp_path / "resigned.safetensors", **edit)
    assert load_model(resigned).vocabulary.codes != load_model(model).vocabulary.codes  # an edit the schema allows
    edited = rewrite_model(model, tmp_path / "edited.safetensors", **edit, sign=False)
    with pytest.raises(NabiyaError, match="header is corrupt"):
        load_model(edited)


@pytest.mark.parametrize("value", ["", 0, None, [], "true", 1])
def test_stateful_must_be_true_or_false(model_file, tmp_path, value):
    def change(document):
        document["config"]["model"]["stateful"] = value

    with pytest.raises(NabiyaError, match="stateful"):
        load_model(rewrite_model(model_file, tmp_path / "edited.safetensors", document=change))


def test_files_of_format_version_2_still_load(model_file, tmp_path):
    def as_version_2(header):
        document = json.loads(header["nabiya"])
        document.pop("family")
        return {"format": header["format"], "format_version": "2", "nabiya": json.dumps(document)}

    old = rewrite_model(model_file, tmp_path / "v2.safetensors", metadata=as_version_2, sign=False)
    saved = load_model(old)
    assert saved.format_version == 2 and saved.stateful and FORMAT_VERSION == 3


def test_a_second_family_registers_without_touching_the_generic_part(tmp_path):
    """What the corpus models will do: a schema and a builder; load_model returns what the builder makes."""
    schema = {
        "type": "object",
        "required": ["tokens", "weights_sha256"],
        "properties": {"tokens": {"type": "array", "items": {"type": "string"}, "maxItems": 10}},
    }
    family = register_family(ModelFamily("toy", schema=schema, build=lambda document, tensors, info: (
        document["tokens"], tensors["embedding"].shape, info.format_version)))  # fmt: skip
    try:
        path = write_model_file(tmp_path / "toy.safetensors", {"embedding": np.ones((3, 2), np.float32)},
                                {"tokens": ["<start>", "<end>", "c4"]}, family=family.name)  # fmt: skip
        assert load_model(path) == (["<start>", "<end>", "c4"], (3, 2), FORMAT_VERSION)
        bad = rewrite_model(path, tmp_path / "bad.safetensors", document=lambda d: d.update(tokens=["x"] * 11))
        with pytest.raises(NabiyaError, match="tokens: .* is too long"):
            load_model(bad)
        with pytest.raises(NabiyaError, match="the model's description is invalid"):
            write_model_file(tmp_path / "x.safetensors", {}, {"tokens": 5}, family="toy")
        assert not (tmp_path / "x.safetensors").exists()
    finally:
        FAMILIES.pop("toy")
    with pytest.raises(NabiyaError, match="family 'toy', which this nabiya does not know"):
        load_model(path)


# --- fuzzing: edited headers and bytes give the project's own error, quickly --------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every place in a JSON document, as a tuple of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield from _paths(child, (*prefix, index))


def _load_within_bound(path) -> None:
    started = time.perf_counter()
    try:
        load_model(path)
    except NabiyaError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    assert time.perf_counter() - started < TIME_BOUND_SECONDS


@pytest.fixture(scope="module")
def document_and_places(model_file):
    metadata, _ = read_model(model_file)
    document = json.loads(metadata["nabiya"])
    return document, [place for place in _paths(document) if place]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edited_header_value_gives_only_a_nabiya_error(model_file, document_and_places, tmp_path, data):
    document, places = document_and_places
    place = data.draw(st.sampled_from(places))
    value = data.draw(JSON_VALUES)
    sign = data.draw(st.booleans())

    def change(edited):
        target = edited
        for part in place[:-1]:
            target = target[part]
        target[place[-1]] = value

    path = rewrite_model(model_file, tmp_path / "fuzzed.safetensors", document=change, sign=sign)
    _load_within_bound(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damaged_bytes_give_only_a_nabiya_error(model_file, tmp_path, data):
    damaged = bytearray(model_file.read_bytes())
    header_size = int.from_bytes(damaged[:8], "little")
    in_header = data.draw(st.booleans())
    for _ in range(data.draw(st.integers(1, 4))):
        end = 8 + header_size if in_header else len(damaged)
        damaged[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del damaged[data.draw(st.integers(0, len(damaged))) :]
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(bytes(damaged))
    _load_within_bound(path)
