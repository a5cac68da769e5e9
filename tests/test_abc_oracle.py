"""abc2midi (abcMIDI, an independent ABC implementation) as an oracle for nabiya's ABC reader and writer.

Real tunes from music21's ABC books, chosen to cover each construct the reader once misread
(broken rhythm past slurs, grace notes and decorations; ``">"`` annotations; inline voices and
fields; key signatures with accidentals; tuplets; ``H`` fermatas; double accidentals; repeats,
endings and parts, played), plus a random-but-fixed sample, are read by both and their notes
compared as (onset, duration, pitch): see ``abc_oracle.py`` for what is set aside. The whole
books are compared by hand with ``benchmarks/abc_agreement.py``.
"""

from fractions import Fraction

import pytest
from abc_oracle import ABC2MIDI, abc2midi_notes, compare_notes, compare_tune, music21_abc_books, nabiya_notes, tune_texts

from nabiya.music.abc import song_from_abc, song_to_abc
from nabiya.music.song import Song

pytestmark = pytest.mark.skipif(
    ABC2MIDI is None, reason="abc2midi (abcMIDI) is not installed: apt-get install abcmidi (.ci/run does when it can)"
)

# (what the tunes cover, how repeats are read, tunes as "book/file#X")
COVERAGE = [
    ("broken rhythm, then a slur", "written", ["oneills1850/0001-0050.abc#8", "oneills1850/0001-0050.abc#20"]),
    ("broken rhythm, then grace notes", "written", ["oneills1850/0201-0300.abc#246", "oneills1850/0550-0625.abc#563"]),
    ("broken rhythm, then a decoration", "written", ["oneills1850/0001-0050.abc#15", "oneills1850/0051-0100.abc#68"]),
    ("broken rhythm inside a slur", "written", ["oneills1850/0001-0050.abc#4", "oneills1850/0051-0100.abc#80"]),
    ('annotations ">"', "written", ["oneills1850/0051-0100.abc#89", "oneills1850/0051-0100.abc#90"]),
    ("inline voices [V:1] [V:2]", "written", ["airdsAirs/book3.abc#0535", "airdsAirs/book6.abc#1003"]),
    ("inline fields [K:] [M:]", "written", ["oneills1850/0550-0625.abc#570", "ryansMammoth/RumAndOnionsJig.abc#1"]),
    ("K: with an accidental", "written", ["ryansMammoth/PausteenFawnJig.abc#1"]),
    ("clefs in K:", "written", ["josquin/4vPerIlludAveProlatum.abc#2", "josquin/adieuMesAmours.abc#3"]),
    ("tuplets (5 to (9", "written", ["oneills1850/0051-0100.abc#83", "oneills1850/0101-0200.abc#199"]),
    ("H fermatas", "written", ["oneills1850/0001-0050.abc#3", "oneills1850/0001-0050.abc#5"]),
    ("double accidentals", "written", ["ryansMammoth/NoveltyLancashireClog.abc#1", "airdsAirs/book6.abc#1164"]),
    ("endings, played", "played", ["oneills1850/0051-0100.abc#97", "oneills1850/0401-0486.abc#480"]),
    ("::, played", "played", ["oneills1850/0626-0700.abc#679", "oneills1850/1176-1275.abc#1228"]),
    ("P:ABA parts, played", "played", ["airdsAirs/book1.abc#0089", "airdsAirs/book1.abc#0103"]),
]
# drawn with random.Random(2026).sample over every tune of the books, then fixed
RANDOM_SAMPLE = [
    "oneills1850/1781-1800.abc#1793", "essenFolksong/ballad20.abc#35", "essenFolksong/erk30.abc#22",
    "essenFolksong/han2.abc#471", "oneills1850/1556-1624.abc#1612", "airdsAirs/book3.abc#0591",
    "essenFolksong/han1.abc#269", "essenFolksong/fink0.abc#160", "essenFolksong/boehme20.abc#210",
    "essenFolksong/zuccal0.abc#558", "essenFolksong/lux.abc#388", "essenFolksong/erk20.abc#202",
    "essenFolksong/erk10.abc#49", "airdsAirs/book5.abc#0864", "oneills1850/0001-0050.abc#42",
    "oneills1850/1176-1275.abc#1270", "oneills1850/1625-1700.abc#1697", "essenFolksong/altdeu10.abc#243",
    "oneills1850/1556-1576.abc#1558", "essenFolksong/erk10.abc#190",
]  # fmt: skip
CASES = [(what, repeats, tune) for what, repeats, tunes in COVERAGE for tune in tunes] + [
    ("random sample", repeats, tune) for tune in RANDOM_SAMPLE for repeats in ("written", "played")
]

_texts: dict = {}


def tune_text(label: str) -> str:
    book, rest = label.split("/", 1)
    file_name = rest.split("#")[0]
    if file_name not in _texts:
        (path,) = (music21_abc_books() / book).rglob(file_name)
        _texts[file_name] = dict(tune_texts(path))
    return _texts[file_name][rest]


@pytest.mark.parametrize("what, repeats, tune", CASES, ids=[f"{case[2]}-{case[1]}" for case in CASES])
def test_real_tunes_read_as_abc2midi_reads_them(what, repeats, tune):
    result = compare_tune(tune_text(tune), lambda text: song_from_abc(text, repeats=repeats), repeats=repeats)
    assert result.verdict == "agree", f"{tune} ({what}): {result.verdict}: {result.detail}"


SYNTHETIC = {
    "broken rhythm past slurs, grace notes, decorations, chord symbols": 'L:1/8\nK:C\nA>(Bc) (dcd>)B c>{d}B A<uG | A>"Am"B A>!accent!B A<~B c2 |]',
    "annotations with > and <": 'L:1/8\nK:C\ne e ">"e3 d | "<"c ">accent"d "^>"e2 z2 |]',
    "inline key, unit and meter": "L:1/8\nM:2/4\nK:C\nB B [K:Bb] B B | [L:1/16] B B B B [L:1/8] B B | [M:3/4] c6 |]",
    "key accidentals, exp, Hp": "L:1/4\nK:C ^f _b\nf b F B =f f |\n[K:D exp ^f] c f d |\n[K:Hp] c f g |]",
    "double accidentals carried": "L:1/4\nK:C\n^^F F f _B | __B B b =B |]",
    "clef=bass, then treble-8 and middle= in the body": "L:1/4\nK:C clef=bass\nC D c |\n[K:C treble-8] C c |\n[K:C middle=d] C c |]",
    "octave=-1 (abc2midi ignores it in the body)": "L:1/4\nK:C octave=-1\nC D c |]",
    "tuplets": "L:1/8\nM:4/4\nK:C\n(3CDE (3:2:2C2D (5CDEFG (3:2:4CDEF | (7CDEFGAB c4 |]",
    "ties keep accidentals": "L:1/8\nM:2/4\nK:C\n^c4- | c2 c2 | _B4- | B2 B2 |]",
}


@pytest.mark.parametrize("body", SYNTHETIC.values(), ids=SYNTHETIC.keys())
def test_constructs_read_as_abc2midi_reads_them(body):
    text = f"X:1\n{body}\n"
    result = compare_tune(text, song_from_abc)
    assert result.verdict == "agree", f"{result.verdict}: {result.detail}"


@pytest.mark.parametrize(
    "codes",
    [
        "c:1/5 d:1/5 e:1/5 f:1/5 g:1/5 a4 b2 c'2",  # quintuplet sixteenths
        "c:2/7 d:2/7 e:2/7 f:2/7 g:2/7 a:2/7 b:2/7 c2 d2",  # septuplet eighths
        "c6 d6 e6 f12 g12 a12 b4 c'1",  # triplet quarters and eighths
        "c:1/3 d:2/3 e:1/5 r:1/5 f:3/5 g2 a4.",  # uneven tuplets with a rest
        "b,,,,,4 c,,,,,4 g''''4 f#''''8 bb,,,,,8",  # the lowest and highest octaves
        "c2. d4 e1 f:5/2 g8",  # notes across bar lines, tied
    ],
)
def test_what_nabiya_writes_abc2midi_reads_as_the_same_notes(codes):
    song = Song.from_codes(codes, meter="3/4")
    text = song_to_abc(song)
    assert compare_notes(nabiya_notes(song), abc2midi_notes(text)) is None, text
    assert song_from_abc(text).notes == song.notes


def test_the_oracle_sees_a_misreading():
    """A reader that loses the note after an annotation (music21's slip) is caught."""
    text = 'X:1\nL:1/8\nK:C\ne e ">"e3 d |]\n'

    def misread(abc):
        song = song_from_abc(abc)
        return song.with_notes(song.notes[:2] + song.notes[3:])

    assert compare_tune(text, misread).verdict == "differ"
    notes = abc2midi_notes(text)
    assert compare_notes(notes, notes) is None and notes[2] == (480, 720, 76)
    assert Fraction(notes[2][1], 480) == Fraction(3, 2)
