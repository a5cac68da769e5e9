"""Corpora: tunes read once and cached, skips counted by reason, a split that is the same every time."""

import dataclasses
import json
import shutil
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from nabiya.errors import NabiyaError
from nabiya.music import corpus_reading
from nabiya.music.corpus import (
    DEFAULT_CORPUS,
    Corpus,
    corpus_names,
    load_corpus,
    read_split,
    split_ids,
    split_part,
)
from nabiya.music.song import Song
from nabiya.music.transpose import transpose
from nabiya.music.versions import version_groups

FIXTURES = Path(__file__).parent / "data" / "corpus"
BOOK = FIXTURES / "tunes.abc"


def _counting_reader(calls: list):
    def reader(kind, text, path, source):
        calls.append(source)
        return corpus_reading.read_tune(kind, text, path, source)

    return reader


@pytest.fixture
def counted(monkeypatch):
    """Every tune a reader reads, in order: read in this process so that it can be counted."""
    calls: list[str] = []
    original = corpus_reading.read_files

    def read_files(*args, **kwargs):
        return original(*args, **{**kwargs, "reader": _counting_reader(calls)})

    monkeypatch.setattr(corpus_reading, "read_files", read_files)
    return calls


def test_a_book_of_tunes_keeps_the_good_ones_and_counts_the_rest_by_reason(tmp_path):
    corpus = load_corpus(BOOK, cache=tmp_path)
    assert corpus.ids == ("tunes.abc#1", "tunes.abc#2", "tunes.abc#3")
    assert corpus.skipped() == {"chords": 1, "voices": 1, "unreadable": 1, "duplicate": 1, "too short": 1}
    reasons = {skip.id: skip.reason for skip in corpus.skips}
    assert reasons == {"tunes.abc#4": "chords", "tunes.abc#5": "voices", "tunes.abc#6": "unreadable",
                       "tunes.abc#7": "duplicate", "tunes.abc#8": "too short"}  # fmt: skip
    messages = {skip.id: skip.message for skip in corpus.skips}
    assert "line 46" in messages["tunes.abc#6"] and "L:1/0" in messages["tunes.abc#6"]  # the file's own line
    assert "tunes.abc#1" in messages["tunes.abc#7"]
    jig = corpus.song("tunes.abc#1")
    assert (jig.title, jig.meter, jig.key, jig.pickup) == ("The Good Jig", "6/8", "D major", Fraction(1, 2))
    assert jig.meta == {"id": "tunes.abc#1", "collection": "tunes.abc", "source": str(BOOK), "tune": "1"}
    assert corpus.song("tunes.abc#3").key == "E dorian"


def test_a_folder_reads_every_kind_of_file_and_skips_the_broken_ones(tmp_path):
    corpus = load_corpus(FIXTURES, cache=tmp_path)
    assert set(corpus.ids) == {"corpus/tunes.abc#1", "corpus/tunes.abc#2", "corpus/tunes.abc#3",
                               "corpus/ode.musicxml", "corpus/twinkle.mid", "notes/air#1"}  # fmt: skip
    reasons = {skip.id: skip.reason for skip in corpus.skips}
    assert reasons["corpus/broken.mid"] == "unreadable"
    assert reasons["notes/bad#1"] == "unreadable"
    assert corpus.reading["ignored_files"] == 1  # about.md
    assert corpus.song("notes/air#1").meter == "3/4"
    assert corpus.song("corpus/twinkle.mid").notes == load_corpus(FIXTURES / "twinkle.mid", cache=False).songs[0].notes


def test_the_second_load_reads_no_tune_and_a_changed_file_is_read_again(tmp_path, counted):
    book = tmp_path / "book.abc"
    shutil.copy(BOOK, book)
    cache = tmp_path / "cache"
    first = load_corpus(book, cache=cache)
    assert len(counted) == 8 and first.reading["tunes_read"] == 8
    counted.clear()
    second = load_corpus(book, cache=cache)
    assert counted == [] and (second.reading["tunes_read"], second.reading["tunes_cached"]) == (0, 8)
    assert [song.notes for song in second] == [song.notes for song in first]
    assert [(s.meter, s.key, s.pickup, s.title, s.meta) for s in second] == [
        (s.meter, s.key, s.pickup, s.title, s.meta) for s in first
    ]
    assert second.skips == first.skips
    book.write_text(BOOK.read_text().replace("GABc dBGB|cBAG", "GABc dBGB|cBAE"))
    third = load_corpus(book, cache=cache)
    assert len(counted) == 8
    assert third.song("book.abc#2").notes != first.song("book.abc#2").notes


def test_a_new_reader_reads_every_tune_again(tmp_path, counted, monkeypatch):
    load_corpus(BOOK, cache=tmp_path)
    counted.clear()
    monkeypatch.setattr(corpus_reading, "_READER_VERSION", "a reader fixed since")
    load_corpus(BOOK, cache=tmp_path)
    assert len(counted) == 8


def test_reading_in_a_pool_of_processes_gives_what_reading_here_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_reading, "POOL_MIN_TUNES", 2)
    monkeypatch.setattr(corpus_reading, "TUNES_PER_TASK", 3)
    pooled = load_corpus(BOOK, cache=False, jobs=2)
    here = load_corpus(BOOK, cache=False, jobs=1)
    assert pooled.reading["jobs"] == 2 and here.reading["jobs"] == 1
    assert [song.notes for song in pooled] == [song.notes for song in here]
    assert pooled.skips == here.skips


def test_a_cache_file_that_is_not_whole_is_read_again(tmp_path, counted):
    load_corpus(BOOK, cache=tmp_path)
    (cached,) = tmp_path.rglob("*.jsonl")
    cached.write_text(cached.read_text().splitlines()[0] + "\n")  # only the header survived
    counted.clear()
    assert len(load_corpus(BOOK, cache=tmp_path)) == 3 and len(counted) == 8


def test_an_unknown_name_lists_the_books_and_an_empty_corpus_says_why(tmp_path):
    with pytest.raises(NabiyaError, match="unknown corpus 'nosuchbook'.*oneills1850") as error:
        load_corpus("nosuchbook")
    assert "default" in str(error.value)
    (tmp_path / "bad").mkdir()
    shutil.copy(FIXTURES / "broken.mid", tmp_path / "bad" / "broken.mid")
    with pytest.raises(NabiyaError, match=r"no tunes to learn from \(1 unreadable\)"):
        load_corpus(tmp_path / "bad", cache=False)
    with pytest.raises(NabiyaError, match="cannot read .pdf as a corpus"):
        (tmp_path / "x.pdf").write_bytes(b"%PDF")
        load_corpus(tmp_path / "x.pdf")


def test_music21_ships_the_default_books():
    names = corpus_names()
    assert set(DEFAULT_CORPUS) | {"essenFolksong"} <= set(names)
    assert all(path.is_dir() for path in names.values())


def test_the_split_is_by_tune_id_the_same_every_time_and_disjoint(tmp_path):
    ids = [f"book/{n:04d}.abc#{n}" for n in range(3000)]
    split = split_ids(ids)
    assert set(split.train) == set(split_ids(list(reversed(ids))).train)  # the order of ids does not matter
    parts = [set(split.train), set(split.valid), set(split.test)]
    assert sum(map(len, parts)) == len(ids) and set().union(*parts) == set(ids)
    assert all(not (a & b) for a in parts for b in parts if a is not b)
    assert 0.87 < len(split.train) / len(ids) < 0.93 and 0.03 < len(split.test) / len(ids) < 0.07
    more = split_ids(ids + [f"other/{n}.abc#1" for n in range(500)])  # adding tunes moves none
    assert set(split.test) <= set(more.test) and set(split.train) <= set(more.train)
    assert split_ids(ids, seed=1).test != split.test
    assert split_part(ids[0]) in ("train", "valid", "test")
    written = split.write(tmp_path)
    assert written.name == "split.json" and read_split(tmp_path) == split
    data = json.loads(written.read_text())
    assert data["counts"] == {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}
    with pytest.raises(NabiyaError, match="three shares"):
        split_ids(ids, (0.9, 0.2, 0.0))


def _melody(codes: str, tune_id: str, key: str = "D major") -> Song:
    return dataclasses.replace(Song.from_codes(codes, key=key, meter="4/4"), meta={"id": tune_id})


def test_versions_of_a_tune_are_placed_together():
    phrase = "d8 e8 f#8 g8 a8 b8 a8 g8 f#8 e8 d8 e8 f#8 d8 e4 "
    tune = _melody(phrase * 2, "ryans/tune.abc#1")
    version = _melody(phrase + phrase.replace("e4", "a4"), "oneills/0001.abc#7")
    moved = dataclasses.replace(transpose(tune, 3), meta={"id": "aird/book1.abc#3"})  # another key
    other = _melody("c4 e4 g4 c'4 " * 8, "book/other.abc#1", key="C major")
    groups = version_groups([tune, version, moved, other])
    assert groups == dict.fromkeys(["ryans/tune.abc#1", "oneills/0001.abc#7", "aird/book1.abc#3"], "aird/book1.abc#3")
    corpus = Corpus((tune, version, moved, other))
    for seed in range(8):
        split = corpus.split(seed=seed)
        placed = {part for part in ("train", "valid", "test") for tune_id in split.part(part) if tune_id in groups}
        assert len(placed) == 1
        assert split.groups == {"ryans/tune.abc#1": "aird/book1.abc#3", "oneills/0001.abc#7": "aird/book1.abc#3"}


def test_corpus_info_counts_what_the_corpus_holds(tmp_path):
    corpus = load_corpus(BOOK, cache=tmp_path)
    info = corpus.info()
    assert (info.tunes, info.notes) == (3, 37 + 54 + 18)
    assert info.skipped == corpus.skipped() and set(info.skip_examples) == set(info.skipped)
    assert info.meters == {"6/8": 1, "4/4": 1, "3/4": 1}
    assert info.modes == {"major": 2, "dorian": 1}
    assert info.lengths["min"] == 18 and info.lengths["max"] == 54 and info.lengths["median"] == 37
    assert sum(count for _, _, count in info.length_histogram) == 3
    assert info.split["train"] + info.split["valid"] + info.split["test"] == 3
    assert info.vocabulary["size"] == info.vocabulary["notes"] + info.vocabulary["conditions"] + 4
    assert json.loads(json.dumps(info.to_json()))["tunes"] == 3


@pytest.mark.slow
def test_a_music21_book_is_read_with_its_skips(tmp_path):
    corpus = load_corpus("miscFolk", cache=tmp_path)
    assert len(corpus) > 150 and corpus.ids[0].startswith("miscFolk/")
    assert {"chords", "voices", "duplicate"} <= set(corpus.skipped())
    assert Counter(song.meta["collection"] for song in corpus) == {"miscFolk": len(corpus)}
    warm = load_corpus("miscFolk", cache=tmp_path)
    assert warm.reading["tunes_read"] == 0 and warm.ids == corpus.ids


def test_a_jsonl_of_notes_is_a_corpus_with_the_records_ids(tmp_path):
    sample = Path(__file__).parent / "data" / "folk_corpus_sample.jsonl"
    corpus = load_corpus([sample, BOOK], cache=tmp_path)
    assert corpus.ids[0] == "oneills1850/0001-0050.abc#1" and len(corpus) == 13 + 3
    assert corpus.song("oneills1850/0001-0050.abc#1").key == "G minor"
    assert corpus.sources == (str(sample), str(BOOK))
    assert {song.meta["collection"] for song in corpus} == {"folk_corpus_sample.jsonl", "tunes.abc"}
