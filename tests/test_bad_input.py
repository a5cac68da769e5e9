"""Bad input of every kind, through the command line: one line, exit status 2, nothing left behind.

ONE table, :data:`BAD_INPUTS`, holds every row. A row is the command line (placeholders:
``{tmp}`` a fresh folder, ``{out}`` the output location inside it, ``{model}`` a valid
model file), a piece of text the error line must contain (it names the input), and the
files to make in ``{tmp}`` first. Each row runs in-process (``nabiya.cli.main``) and must
end with exit status 2 and exactly one line on standard error, ``nabiya: error: …``,
naming the input, with no traceback, within a time bound, and leave ``{tmp}`` as it was
(no output folder, no temporary file). A sample runs as real processes too.

To add rows for a new command::

    bad("serve: a port that is not a number", "serve", "--port", "x", names="--port")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from model_files import rewrite_model
from nabiya.cli import main

TIME_BOUND_SECONDS = 30


@dataclass(frozen=True)
class Bad:
    argv: tuple[str, ...]
    names: str
    files: dict = field(default_factory=dict)  # name -> text | bytes | callable(tmp, model) making it


BAD_INPUTS: dict[str, Bad] = {}


def bad(row_id: str, *argv: str, names: str, files: dict | None = None) -> None:
    """Add a row: ``argv`` is the command line, ``names`` what the error line must contain."""
    assert row_id not in BAD_INPUTS, row_id
    BAD_INPUTS[row_id] = Bad(tuple(argv), names, dict(files or {}))


def run_(*args: str) -> tuple[str, ...]:
    return ("run", *args, "--quiet", "--out", "{out}")


def compare_(*args: str) -> tuple[str, ...]:
    return ("compare", *args, "--quiet", "--out", "{out}")


def generate_(*args: str, model: str = "{model}") -> tuple[str, ...]:
    return ("generate", model, *args, "--out", "{out}")


# --- the commands and their options ------------------------------------------------------------

bad("top: unknown command", "frobnicate", names="frobnicate")
bad("top: unknown option", "--frobnicate", names="--frobnicate")
bad("songs: extra argument", "songs", "extra", names="extra")
bad("songs: unknown option", "songs", "--out", "x", names="--out")
bad("convert: no output", "convert", "nabiya", names="OUT")
bad("generate: no model", "generate", names="MODEL")

WHOLE_NUMBERS_THAT_ARE_NOT = {
    "words": "many", "a fraction": "1.5", "empty": "", "hex": "0x10", "exponent": "1e3", "two numbers": "5 5",
    "Arabic digits": "١٢", "5000 digits": "9" * 5000,
}
for label, value in WHOLE_NUMBERS_THAT_ARE_NOT.items():
    bad(f"run: --epochs {label}", *run_("--epochs", value), names="--epochs")
    bad(f"compare: --epochs {label}", *compare_("--epochs", value), names="--epochs")
    bad(f"run: --seed {label}", *run_("--seed", value), names="--seed")
for label, value in {"0": "0", "-1": "-1", "3e9": "3000000000", "2**70": str(2**70), "100001": "100001"}.items():
    bad(f"run: --epochs {label}", *run_("--epochs", value), names="epochs")
    bad(f"compare: --epochs {label}", *compare_("--epochs", value), names="epochs")
for label, value in {"-1": "-1", "2**32": str(2**32), "2**70": str(2**70)}.items():
    bad(f"run: --seed {label}", *run_("--seed", value), names="seed")
    bad(f"compare: --seed {label}", *compare_("--seed", value), names="seed")
    bad(f"generate: --seed {label}", *generate_("--seed", value), names="seed")
for name in ("nosuch", "MLP", "stateful3", ""):
    bad(f"run: preset {name!r}", *run_(name), names=name or "preset")
bad("run: --features", *run_("--features", "embedding"), names="embedding")
for label, value in {"0": "0", "-1": "-1", "100001": "100001"}.items():
    bad(f"run: --backprop-windows {label}", *run_("--backprop-windows", value), names="backprop windows")
bad("run: --backprop-windows words", *run_("--backprop-windows", "x"), names="--backprop-windows")
bad("run: --backprop-windows for a stateless preset", *run_("mlp", "--backprop-windows", "8"),
    names="backprop windows 8: only a stateful model")
bad("run: --tune without --song", *run_("--tune", "3"), names="--tune")
bad("compare: --tune without --song", *compare_("--tune", "3"), names="--tune")
bad("run: unknown option", *run_("--frobnicate"), names="--frobnicate")
bad("run: option of another command", *run_("--top-p", "0.9"), names="--top-p")
bad("compare: unknown option", *compare_("--save", "x.safetensors"), names="--save")
bad("compare: preset argument", "compare", "mlp", "--out", "{out}", names="mlp")

for label, value in {"0": "0", "-5": "-5", "10**12": str(10**12), "words": "x", "a fraction": "1.5",
                     "100001": "100001", "5000 digits": "9" * 5000}.items():  # fmt: skip
    bad(f"generate: --length {label}", *generate_("--length", value), names="length")
for label, value in {"0": "0", "-1": "-1", "1025": "1025", "10**12": str(10**12), "words": "x"}.items():
    bad(f"generate: --beam-width {label}", *generate_("--beam-width", value), names="beam")
for label, value in {"0": "0", "-1": "-1", "10**12": str(10**12), "words": "x", "100001": "100001"}.items():
    bad(f"generate: --top-k {label}", *generate_("--top-k", value), names="top-k")
for label, value in {"0": "0", "1.5": "1.5", "nan": "nan", "inf": "inf", "-0.1": "-0.1", "words": "x",
                     "1e400": "1e400"}.items():  # fmt: skip
    bad(f"generate: --top-p {label}", *generate_("--top-p", value), names="top-p")
for label, value in {"0": "0", "-1": "-1", "nan": "nan", "inf": "inf", "1e400": "1e400", "words": "x"}.items():
    bad(f"generate: --temperature {label}", *generate_("--temperature", value), names="temperature")
bad("generate: --strategy", *generate_("--strategy", "nucleus"), names="nucleus")
bad("generate: two strategies", *generate_("--top-k", "3", "--beam-width", "2"), names="beam")
bad("generate: option of no effect", *generate_("--strategy", "greedy", "--top-p", "0.9"), names="top_p")
bad("generate: temperature with beam", *generate_("--strategy", "beam", "--temperature", "2"), names="temperature")
bad("generate: unknown option", *generate_("--epochs", "3"), names="--epochs")

# --- songs: files, codes and names, through every command that reads one ----------------------


def _fifo(name: str) -> Callable:
    def make(tmp: Path, model: Path) -> None:
        os.mkfifo(tmp / name)

    return make


def _mxl(entries: dict[str, bytes], *, flag_bits: int = 0, method: int | None = None) -> Callable:
    def make(tmp: Path, model: Path) -> bytes:
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry, data in entries.items():
                archive.writestr(entry, data)
        data = bytearray(buffer.getvalue())
        if flag_bits or method is not None:  # patch the local and central headers' flags / method
            for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
                start = data.find(signature)
                while start != -1:
                    if flag_bits:
                        data[start + flags_at] |= flag_bits
                    if method is not None:
                        data[start + flags_at + 2 : start + flags_at + 4] = method.to_bytes(2, "little")
                    start = data.find(signature, start + 4)
        return bytes(data)

    return make


VALID_MIDI_HEADER = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"
CONTAINER = b'<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>'

# id -> (file name or None for a literal source, content, source, names)
SONG_INPUTS = {
    "abc: bad unit length": ("bad.abc", "X:1\nL:1/0\nK:C\nabc\n", None, None),
    "abc: bad meter": ("bad.abc", "X:1\nM:x/y\nK:C\nabc\n", None, None),
    "abc: a chord": ("chords.abc", "X:1\nT:Chords\nM:4/4\nL:1/4\nK:C\n[CEG] D E F|\n", None, None),
    "abc: no tune": ("words.abc", "just some words\nand no tune at all\n", None, None),
    "abc: no key line": ("nokey.abc", "X:1\nL:1/8\nT:no key\nabc\n", None, None),
    "abc: empty": ("empty.abc", "", None, None),
    "abc: only rests": ("rests.abc", "X:1\nL:1/8\nK:C\nz4 | z4 |]\n", None, None),
    "abc: an unknown symbol": ("at.abc", "X:1\nL:1/8\nK:C\nc @ d\n", None, None),
    "abc: pitch out of range": ("low.abc", "X:1\nL:1/8\nK:C\nA,,,,,,,, c\n", None, None),
    "abc: binary": ("noise.abc", bytes(range(256)) * 4, None, None),
    "abc: C2000000": ("long.abc", "X:1\nL:1/8\nK:C\nC2000000 D|\n", None, None),
    "abc: C9999 under M:2/4": ("hang.abc", "X:1\nM:2/4\nL:1/8\nK:C\nC9999 D|\n", None, None),
    "abc: notes far longer than the bar": ("bar.abc", "X:1\nM:6/8\nL:1/8\nK:C\n|eC992f g3|\n", None, None),
    "abc: tempo 0.00001": ("slow.abc", "X:1\nQ:1/4=0.00001\nL:1/8\nK:C\nCDEFGABc|\n", None, None),
    "musicxml: not xml": ("bad.musicxml", "hello", None, None),
    "musicxml: cut short": ("cut.musicxml", "<score-partwise><part id='P1'><measure>", None, None),
    "musicxml: another root": ("foo.musicxml", "<?xml version='1.0'?><foo/>", None, None),
    "musicxml: empty": ("empty.xml", "", None, None),
    "mxl: not a zip": ("bad.mxl", b"PK\x03\x04 not really a zip", None, None),
    "mxl: no container": ("nocontainer.mxl", _mxl({"score.xml": b"<score-partwise/>"}), None, None),
    "mxl: encrypted": ("locked.mxl", _mxl({"META-INF/container.xml": CONTAINER, "score.xml": b"<x/>"}, flag_bits=1),
                       None, None),
    "mxl: unknown compression": ("odd.mxl", _mxl({"META-INF/container.xml": CONTAINER, "score.xml": b"<x/>"},
                                                 method=99), None, None),  # fmt: skip
    "midi: not midi": ("bad.mid", "MThd garbage", None, None),
    "midi: cut short": ("cut.mid", b"MThd\x00\x00\x00\x06\x00", None, None),
    "midi: empty": ("empty.midi", b"", None, None),
    "midi: no tracks": ("none.mid", VALID_MIDI_HEADER, None, None),
    "midi: huge delta time": ("delta.mid", VALID_MIDI_HEADER + b"MTrk\x00\x00\x00\x0c\x8f\xff\xff\x7f\x90\x3c\x40"
                              b"\x00\x80\x3c\x00\x00", None, None),  # fmt: skip
    "codes file: a bad code": ("codes.txt", "% title: Codes\ng8 e8 e4\nf8 x8 d4\n", None, None),
    "codes file: no codes": ("empty.txt", "% nothing here\n", None, None),
    "codes file: tempo 0": ("tempo.txt", "% tempo: 0\ng8 e8 e4 f8 d8 d4\n", None, None),
    "codes file: a huge duration": ("huge.txt", "g8 e8 c:999999999 f8 d8 d4\n", None, None),
    "codes file: tempo 1e-7": ("slow.txt", "% tempo: 0.0000001\ng8 e8 e4 f8 d8 d4\n", None, None),
    "codes file: Unicode digits": ("digits.notes", "g8 e8 c٤ f8 d8 d4\n", None, None),
    "jsonl: not json": ("corpus.jsonl", "this is not json\n", None, None),
    "jsonl: not UTF-8": ("latin.jsonl", b'{"id": "a\xff", "notes": [[60, 1]]}\n', None, None),
    "jsonl: duration 1e400": ("big.jsonl", '{"id": "x", "title": "T", "notes": [[60, 1e400], [62, 1]]}\n', None,
                              None),  # fmt: skip
    "jsonl: empty": ("nothing.jsonl", "", None, None),
    "unknown extension": ("tune.xyz", "X:1\nK:C\nCDEF|\n", None, None),
    "a missing file": (None, None, "{tmp}/nosuch.abc", "nosuch.abc"),
    "a folder": (None, None, "{tmp}", None),
    "a FIFO": ("pipe.abc", _fifo("pipe.abc"), None, None),
    "/dev/zero": (None, None, "/dev/zero", "/dev/zero"),
    "codes: an unknown code": (None, None, "g8 e8 e4 x9 d8 d4", "x9"),
    "codes: a misspelt song name": (None, None, "ode-to-joy", "ode-to-joy"),
    "codes: 300 bytes of codes": (None, None, " ".join(["g8", "e8", "x9"] * 50), "x9"),
    "codes: a duration too long": (None, None, "g8 e8 c:999999999 f8 d8", "999999999"),
}


def _song_rows() -> None:
    for label, (name, content, source, names) in SONG_INPUTS.items():
        files = {name: content} if name and content is not None else {}
        source = source or f"{{tmp}}/{name}"
        shown = names or (name if name else "{tmp}")
        bad(f"run --song: {label}", *run_("--song", source), names=shown, files=files)
        bad(f"compare --song: {label}", *compare_("--song", source), names=shown, files=files)
        bad(f"convert: {label}", "convert", source, "{out}.mid", names=shown, files=files)


_song_rows()
bad("run: a song too short for the window", *run_("--song", "g8 e8 e4 f8"), names="4 notes")
bad("compare: a song too short for the window", *compare_("--song", "g8 e8 e4 f8"), names="4 notes")
bad("run: --tune of a missing tune", *run_("--song", "{tmp}/two.abc", "--tune", "7"), names="two.abc",
    files={"two.abc": "X:1\nT:One\nK:C\nCDEFGABc|\n\nX:2\nT:Two\nK:G\nGABcdefg|\n"})  # fmt: skip
bad("convert: --tune of a MIDI file", "convert", "{tmp}/a.mid", "{out}.abc", "--tune", "2", names="a.mid",
    files={"a.mid": b"MThd"})  # fmt: skip

# --- where outputs go: checked before any work -------------------------------------------------

LONG = "x" * 300
OUTPUT_FILES = {"afile": "not a folder", "full/notes.txt": "the user's own notes"}


def _earlier_run(tmp: Path, model: Path) -> None:
    folder = tmp / "old"
    folder.mkdir()
    (folder / "summary.json").write_text("{}")
    (folder / ".nabiya-output.json").write_text(json.dumps({"written_by": "nabiya", "files": ["summary.json"]}))


for command, make in (("run", run_), ("compare", compare_), ("generate", generate_)):
    head = make()[: -2]  # the command without its --out
    bad(f"{command}: --out name too long", *head, "--out", f"{{tmp}}/{LONG}", names=LONG[:40], files=OUTPUT_FILES)
    bad(f"{command}: --out under a file", *head, "--out", "{tmp}/afile/run", names="afile", files=OUTPUT_FILES)
    bad(f"{command}: --out is a file", *head, "--out", "{tmp}/afile", names="afile", files=OUTPUT_FILES)
    bad(f"{command}: --out holds other files", *head, "--out", "{tmp}/full", names="full", files=OUTPUT_FILES)
    bad(f"{command}: --out holds other files, --force", *head, "--out", "{tmp}/full", "--force", names="notes.txt",
        files=OUTPUT_FILES)  # fmt: skip
    bad(f"{command}: --out holds an earlier run", *head, "--out", "{tmp}/old", names="--force",
        files={"old": _earlier_run})  # fmt: skip
    bad(f"{command}: --out unwritable", *head, "--out", "/proc/nabiya-test/run", names="/proc")
    bad(f"{command}: --out a path too long", *head, "--out", "{tmp}/" + "/".join(["y" * 250] * 20), names="yyyy")
bad("run: --save name too long", *run_("--save", f"{{tmp}}/{LONG}.safetensors"), names=LONG[:40])
bad("run: --save is a folder", *run_("--save", "{tmp}/models"), names="models", files={"models/keep": "x"})
bad("run: --save under a file", *run_("--save", "{tmp}/afile/m.safetensors"), names="afile", files=OUTPUT_FILES)
bad("run: --save where --out goes", *run_("--save", "{out}"), names="--save")
bad("run: --out the current folder", "run", "--quiet", "--out", ".", names="current folder")
bad("convert: OUT name too long", "convert", "nabiya", f"{{tmp}}/{LONG}.mid", names=LONG[:40])
bad("convert: OUT is a folder", "convert", "nabiya", "{tmp}/models", names="models", files={"models/keep": "x"})
bad("convert: OUT under a file", "convert", "nabiya", "{tmp}/afile/x.mid", names="afile", files=OUTPUT_FILES)
bad("convert: OUT of an unknown kind", "convert", "nabiya", "{out}.xyz", names="out.xyz")
bad("convert: OUT unwritable", "convert", "nabiya", "/proc/nabiya-test.mid", names="/proc")

# --- model files: generate MODEL -----------------------------------------------------------------


def _model_bytes(change: Callable[[bytes], bytes]) -> Callable:
    return lambda tmp, model: change(model.read_bytes())


def _edited(**changes) -> Callable:
    def make(tmp: Path, model: Path) -> None:
        rewrite_model(model, tmp / "edited.safetensors", **changes)

    return make


def _set(path: str, value) -> Callable[[dict], None]:
    """Set a field of the document by a dotted path (``config.model.hidden_size``)."""

    def change(document: dict) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _raw(field_name: str, text: str) -> Callable[[str], str]:
    """Replace a top-level number field's value by raw JSON text (``Infinity``, ``1e400``)."""

    def change(body: str) -> str:
        document = json.loads(body)
        marker = "__RAW__"
        document[field_name] = marker
        return json.dumps(document, ensure_ascii=False).replace(f'"{marker}"', text)

    return change


def _raw_hidden(text: str) -> Callable[[str], str]:
    return lambda body: body.replace('"hidden_size": 128', f'"hidden_size": {text}')


MODEL_BYTES = {
    "empty": lambda data: b"",
    "text": lambda data: b"g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4\n" * 3,
    "truncated": lambda data: data[: len(data) // 2],
    "truncated in its header": lambda data: data[:40],
    "a flipped weight bit": lambda data: data[:-100] + bytes([data[-100] ^ 0x10]) + data[-99:],
    "garbage header": lambda data: data[:8] + b"{" + b"\xff" * 30 + data[39:],
    "trailing bytes": lambda data: data + b"\0" * 16,
    "a header size of 2**63": lambda data: (2**63).to_bytes(8, "little") + data[8:],
    "random bytes": lambda data: np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
}
for label, change in MODEL_BYTES.items():
    bad(f"model: {label}", *generate_(model="{tmp}/bad.safetensors"), names="bad.safetensors",
        files={"bad.safetensors": _model_bytes(change)})  # fmt: skip

bad("model: missing", *generate_(model="{tmp}/nosuch.safetensors"), names="nosuch.safetensors")
bad("model: a folder", *generate_(model="{tmp}"), names="folder")
bad("model: a FIFO", *generate_(model="{tmp}/pipe.safetensors"), names="pipe.safetensors",
    files={"pipe.safetensors": _fifo("pipe.safetensors")})  # fmt: skip
bad("model: /dev/zero", *generate_(model="/dev/zero"), names="/dev/zero")
bad("model: /dev/null", *generate_(model="/dev/null"), names="/dev/null")

MODEL_EDITS = {
    # the metadata around the document
    "another format": dict(metadata=lambda header: {"format": "pt"}),
    "no metadata": dict(metadata=lambda header: None),
    "a newer format version": dict(metadata=lambda header: {**header, "format_version": "4"}),
    "format version 'one'": dict(metadata=lambda header: {**header, "format_version": "one"}),
    "format version '¹'": dict(metadata=lambda header: {**header, "format_version": "¹"}),
    "format version of 5,000 digits": dict(metadata=lambda header: {**header, "format_version": "9" * 5000}),
    "format version 0": dict(metadata=lambda header: {**header, "format_version": "0"}),
    "format version -1": dict(metadata=lambda header: {**header, "format_version": "-1"}),
    "no document": dict(metadata=lambda header: {k: v for k, v in header.items() if k != "nabiya"}),
    "a document that is not JSON": dict(text=lambda body: "{not json"),
    "a document that is a list": dict(text=lambda body: "[1, 2]"),
    "a document nested 100,000 deep": dict(text=lambda body: "[" * 100_000 + "]" * 100_000),
    "a header edited without its checksum": dict(document=_set("summary.epochs", 7), sign=False),
    "the vocabulary edited (d8 -> d2), unsigned": dict(text=lambda body: body.replace('"d8"', '"d2"'), sign=False),
    "the checksum removed": dict(metadata=lambda header: {k: v for k, v in header.items() if k != "sha256"}),
    # values out of type or range (re-signed: the schema must catch them)
    "n_features Infinity": dict(text=_raw("n_features", "Infinity")),
    "n_features 1e400": dict(text=_raw("n_features", "1e400")),
    "n_classes Infinity": dict(text=_raw("n_classes", "Infinity")),
    "n_classes 1e400": dict(text=_raw("n_classes", "1e400")),
    "window Infinity": dict(text=_raw("window", "Infinity")),
    "window 1e400": dict(text=_raw("window", "1e400")),
    "window NaN": dict(text=_raw("window", "NaN")),
    "window of 5,000 digits": dict(text=_raw("window", "9" * 5000)),
    "hidden_size 1.5": dict(text=_raw_hidden("1.5")),
    "hidden_size 100.0": dict(text=_raw_hidden("100.0")),
    "hidden_size NaN": dict(text=_raw_hidden("NaN")),
    "hidden_size 10**20": dict(text=_raw_hidden(str(10**20))),
    "hidden_size -1": dict(text=_raw_hidden("-1")),
    "hidden_size '128'": dict(text=_raw_hidden('"128"')),
    "hidden_size true": dict(text=_raw_hidden("true")),
    "stateful ''": dict(document=_set("config.model.stateful", "")),
    "stateful 0": dict(document=_set("config.model.stateful", 0)),
    "stateful null": dict(document=_set("config.model.stateful", None)),
    "stateful []": dict(document=_set("config.model.stateful", [])),
    "stateful 'true'": dict(document=_set("config.model.stateful", "true")),
    "stateful missing": dict(document=lambda d: d["config"]["model"].pop("stateful")),
    "tempo NaN": dict(text=lambda body: body.replace('"tempo_bpm": 120.0', '"tempo_bpm": NaN')),
    "tempo 0": dict(document=_set("song.tempo_bpm", 0)),
    "tempo 1e400": dict(text=lambda body: body.replace('"tempo_bpm": 120.0', '"tempo_bpm": 1e400')),
    "model kind 'gru'": dict(document=_set("config.model.kind", "gru")),
    "features 'embedding'": dict(document=_set("config.model.features", "embedding")),
    "config window 0": dict(document=_set("config.window", 0)),
    "config window 10**6": dict(document=_set("config.window", 10**6)),
    "seed -1": dict(document=_set("config.seed", -1)),
    "seed 2**40": dict(document=_set("config.seed", 2**40)),
    "backprop_windows 0": dict(document=_set("config.train.backprop_windows", 0)),
    "backprop_windows 'many'": dict(document=_set("config.train.backprop_windows", "many")),
    "epochs 0": dict(document=_set("config.train.epochs", 0)),
    "learning rate -1": dict(document=_set("config.train.learning_rate", -1)),
    "an unknown config field": dict(document=_set("config.model.dropout", 0.5)),
    "no config": dict(document=lambda d: d.pop("config")),
    "config a list": dict(document=_set("config", [])),
    "an unknown family": dict(document=_set("family", "corpus2")),
    "family 5": dict(document=_set("family", 5)),
    "no family": dict(document=lambda d: d.pop("family")),
    "vocabulary empty": dict(document=_set("vocabulary.codes", [])),
    "vocabulary with a bad code": dict(document=_set("vocabulary.codes", ["x9"] * 14)),
    "vocabulary naming a note twice": dict(document=_set("vocabulary.codes", ["c4"] * 14)),
    "vocabulary codes a string": dict(document=_set("vocabulary.codes", "c4 d4")),
    "vocabulary of 100,001 codes": dict(document=_set("vocabulary.codes", ["c4"] * 100_001)),
    "vocabulary one code shorter": dict(document=lambda d: d["vocabulary"]["codes"].pop()),
    "n_classes 0": dict(document=_set("n_classes", 0)),
    "n_classes above the vocabulary": dict(document=_set("n_classes", 15)),
    "n_features 3": dict(document=_set("n_features", 3)),
    "window 5": dict(document=_set("window", 5)),
    "song codes bad": dict(document=_set("song.codes", ["x9"])),
    "song pickup 1/0": dict(document=_set("song.pickup", "1/0")),
    "song pickup words": dict(document=_set("song.pickup", "a bar")),
    "song meter x/y": dict(document=_set("song.meter", "x/y")),
    "song key H major": dict(document=_set("song.key", "H major")),
    "song a list": dict(document=_set("song", [1, 2])),
    "summary a list": dict(document=_set("summary", [1, 2])),
    "weights checksum not hex": dict(document=_set("weights_sha256", "zz")),
    "a missing tensor": dict(tensors=lambda t: {k: v for k, v in t.items() if k != "head.bias"}),
    "an extra tensor": dict(tensors=lambda t: {**t, "head.scale": np.ones(3, np.float32)}),
    "a tensor of another shape": dict(tensors=lambda t: {**t, "head.bias": np.zeros(13, np.float32)}),
    "a tensor of another dtype": dict(tensors=lambda t: {**t, "head.bias": t["head.bias"].astype(np.float64)}),
    "a changed weight, unsigned": dict(tensors=lambda t: {**t, "head.bias": t["head.bias"] + 1}, sign=False),
    "a changed feature table": dict(tensors=lambda t: {**t, "features": t["features"] * 2}),
}
for label, changes in MODEL_EDITS.items():
    bad(f"model: {label}", *generate_(model="{tmp}/edited.safetensors"), names="edited.safetensors",
        files={"edited.safetensors": _edited(**changes)})  # fmt: skip

# --- primers: generate --primer ------------------------------------------------------------------

bad("primer: an unknown code", *generate_("--primer", "g8 e8 e4 x9"), names="x9")
bad("primer: too short", *generate_("--primer", "g8 e8"), names="primer")
bad("primer: outside the vocabulary", *generate_("--primer", "g8 e8 e4 a#4"), names="a#4")
bad("primer: a missing file", *generate_("--primer", "{tmp}/nosuch.abc"), names="nosuch.abc")
bad("primer: a broken file", *generate_("--primer", "{tmp}/bad.abc"), names="bad.abc",
    files={"bad.abc": "X:1\nL:1/0\nK:C\nabc\n"})  # fmt: skip
bad("primer: a FIFO", *generate_("--primer", "{tmp}/pipe.abc"), names="pipe.abc", files={"pipe.abc": _fifo("pipe.abc")})


# --- corpus models: train, evaluate, generate's corpus branch -----------------------------------

_TUNES = '{"id": "a", "meter": "3/4", "key": "D major", "notes": [[62, 1.0], [64, 1.0], [66, 1.0]]}\n'


def train_(*args: str) -> tuple[str, ...]:
    return ("train", *args, "--quiet", "--out", "{out}")


bad("train: an unknown corpus", *train_("--corpus", "nosuchbook"), names="nosuchbook")
bad("train: a corpus empty after filtering", *train_("--corpus", "{tmp}/tunes.jsonl", "--min-notes", "100"),
    names="no tunes to learn from", files={"tunes.jsonl": _TUNES})  # fmt: skip
bad("train: --resume of a folder that is not a run", "train", "--resume", "{tmp}", "--quiet", names="{tmp}")
bad("train: --resume of a missing folder", "train", "--resume", "{tmp}/nosuch", "--quiet", names="nosuch")
bad("train: --resume with --out", "train", "--resume", "{tmp}", "--out", "{out}", names="--out")
bad("train: --steps 0", *train_("--steps", "0"), names="--steps")
bad("train: --dropout 1.5", *train_("--dropout", "1.5"), names="1.5")
bad("train: an unknown preset", *train_("--preset", "folk-gru"), names="folk-gru")
bad("train: --minutes 0", *train_("--minutes", "0"), names="--minutes")
bad("train: --validate-every not whole blocks", *train_("--validate-every", "7"), names="validate every (7)")
bad("train: a transformer's size not divisible by its heads", *train_("--preset", "folk-transformer", "--size", "30"),
    names="size (30)")  # fmt: skip
bad("train: a transformer row longer than its context",
    *train_("--preset", "folk-transformer", "--length", "300"), names="context")  # fmt: skip
bad("train: --out is a file", "train", "--quiet", "--out", "{tmp}/file", names="file", files={"file": "x"})
# train on several processes: the launch is checked before any process joins (a run that cannot join or whose
# processes disagree: tests/test_distributed.py, with real processes)
_LAUNCH = ("--num-processes", "2", "--process-id", "0")
bad("train: --coordinator without a port", *train_("--coordinator", "localhost", *_LAUNCH), names="'localhost'")
bad("train: --coordinator with port 70000", *train_("--coordinator", "127.0.0.1:70000", *_LAUNCH),
    names="127.0.0.1:70000")  # fmt: skip
bad("train: --coordinator alone", *train_("--coordinator", "127.0.0.1:4321"), names="--num-processes")
bad("train: --process-id outside --num-processes",
    *train_("--coordinator", "127.0.0.1:4321", "--num-processes", "2", "--process-id", "2"), names="--process-id")  # fmt: skip
bad("train: --num-processes 0", *train_("--coordinator", "127.0.0.1:4321", "--num-processes", "0", "--process-id",
                                        "0"), names="--num-processes")  # fmt: skip
bad("train: --distributed with --coordinator", *train_("--distributed", "--coordinator", "127.0.0.1:4321"),
    names="--distributed")  # fmt: skip
bad("train: --peer-timeout on one process", *train_("--peer-timeout", "5"), names="--peer-timeout")
bad("train: --peer-timeout 0", *train_("--coordinator", "127.0.0.1:4321", *_LAUNCH, "--peer-timeout", "0"),
    names="--peer-timeout")  # fmt: skip
bad("evaluate: a missing model", "evaluate", "{tmp}/nosuch.safetensors", names="nosuch.safetensors")
bad("evaluate: a tutorial model", "evaluate", "{model}", names="not a corpus model")
bad("evaluate: a folder that is not a run", "evaluate", "{tmp}", names="{tmp}")
bad("evaluate: --samples -1", "evaluate", "{model}", "--samples", "-1", names="--samples")
bad("generate: --count for a tutorial model", *generate_("--count", "3"), names="--count")
bad("generate: --meter for a tutorial model", *generate_("--meter", "6/8"), names="--meter")
bad("serve: --models a missing folder", "serve", "--port", "0", "--models", "{tmp}/nosuch", names="nosuch")
bad("serve: --models a file", "serve", "--port", "0", "--models", "{model}", names="no such folder")
bad("serve: --models with no corpus model", "serve", "--port", "0", "--models", "{tmp}/models", names="no corpus model",
    files={"models/notes.txt": "c4 d4", "models/tutorial.safetensors": lambda tmp, model: model.read_bytes(),
           "models/broken.safetensors": b"not a model"})  # fmt: skip


# --- the runner ----------------------------------------------------------------------------------


class _TooSlow(BaseException):
    pass


def _make_files(row: Bad, tmp: Path, model: Path) -> None:
    for name, content in row.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content = content(tmp, model)
            if content is None:
                continue
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` with its kind, size and modification time."""
    seen = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(root) / name
            info = path.lstat()
            seen[str(path.relative_to(folder))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return seen


def _expand(argv: tuple[str, ...], tmp: Path, model: Path) -> list[str]:
    values = {"tmp": str(tmp), "out": str(tmp / "out"), "model": str(model)}
    return [part.replace("{tmp}", values["tmp"]).replace("{out}", values["out"]).replace("{model}", values["model"])
            for part in argv]  # fmt: skip



def test_the_table_holds_every_kind_the_issue_counts():
    assert len(BAD_INPUTS) >= 239


@pytest.mark.parametrize("row_id", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_status_2_and_leaves_nothing(row_id, tmp_path, model_file, capsys, monkeypatch):
    row = BAD_INPUTS[row_id]
    work = tmp_path / "work"
    work.mkdir()
    _make_files(row, work, model_file)
    monkeypatch.chdir(work)
    before = _snapshot(work)

    def too_slow(signum, frame):
        raise _TooSlow(f"{row_id}: still running after {TIME_BOUND_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(TIME_BOUND_SECONDS)
    try:
        code = main(_expand(row.argv, work, model_file))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("nabiya: error: "), err
    assert _expand((row.names,), work, model_file)[0] in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert _snapshot(work) == before, "the command left something behind or changed a file"


SUBPROCESS_SAMPLE = [
    "run: --epochs 3e9",
    "compare: --epochs 0",
    "convert: a FIFO",
    "model: hidden_size 1.5",
    "run: --out holds other files, --force",
    "generate: --top-p nan",
]


@pytest.mark.parametrize("row_id", SUBPROCESS_SAMPLE)
def test_a_sample_as_real_processes(row_id, tmp_path, model_file):
    """The real exit status and standard error of the `nabiya` program, not just of main()."""
    row = BAD_INPUTS[row_id]
    _make_files(row, tmp_path, model_file)
    before = _snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "nabiya", *_expand(row.argv, tmp_path, model_file)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    names = _expand((row.names,), tmp_path, model_file)[0]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("nabiya: error: ") and names in done.stderr
    assert done.stdout == "" and _snapshot(tmp_path) == before
