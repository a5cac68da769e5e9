"""ABC read as the ABC 2.1 standard says, repeats written or played, tuplets written so that
abc2midi reads them, and no ABC input that hangs, crashes or is silently misread."""

import time
import warnings
from fractions import Fraction
from pathlib import Path

import pytest

from nabiya.cli import main
from nabiya.errors import NabiyaError
from nabiya.music.abc import song_from_abc, song_to_abc, split_tunes
from nabiya.music.formats import _decode, convert, read_song
from nabiya.music.song import Song


def read(body: str, header: str = "L:1/8\n", **options) -> Song:
    return song_from_abc(f"X:1\n{header}K:C\n{body}\n", **options)


def lengths(song: Song) -> list[Fraction]:
    return [note.duration for note in song.notes]


def pitches(song: Song) -> list[int | None]:
    return [note.pitch for note in song.notes]


# --- issue 7.1: broken rhythm with something between the two notes --------------------------


@pytest.mark.parametrize(
    "body",
    ["A>(Bc)", "(cA>)B c", "A>{d}B c", "A>.B c", "A>uB c", "A>!trill!B c", 'A>"Am"B c', 'A>"^text"B c',
     "A>~B c", "A>TB c", "A>HB c", "A> B c", "A>-B c", "A>+trill+B c"],
)  # fmt: skip
def test_broken_rhythm_reaches_past_slurs_grace_notes_decorations_and_chord_symbols(body):
    song = read(body)
    long_, short = song.notes[-3].duration, song.notes[-2].duration
    assert (long_, short) == (Fraction(3, 4), Fraction(1, 4)), song.codes
    assert song.notes[-1].duration == Fraction(1, 2)


def test_broken_rhythm_the_other_way_and_doubled():
    assert lengths(read("A<uG c")) == [Fraction(1, 4), Fraction(3, 4), Fraction(1, 2)]
    assert lengths(read("(dcd>)B")) == [Fraction(1, 2)] * 2 + [Fraction(3, 4), Fraction(1, 4)]
    assert lengths(read("A>>(B c)")) == [Fraction(7, 8), Fraction(1, 8), Fraction(1, 2)]


def test_a_broken_rhythm_between_unequal_notes_is_left_as_written_with_a_warning():
    # ABC 2.1 leaves it undefined; abc2midi leaves both notes as written, and so does nabiya
    with pytest.warns(UserWarning, match=r"measure 1, note 2\): a broken rhythm '>' between notes of unequal length"):
        assert lengths(read("d>B/ c")) == [Fraction(1, 2), Fraction(1, 4), Fraction(1, 2)]
    with pytest.warns(UserWarning, match="unequal length"):  # the second > of a chain
        assert lengths(read("C>D>E F")) == [Fraction(3, 4), Fraction(1, 4), Fraction(1, 2), Fraction(1, 2)]
    assert lengths(read("(3A>BC D")) == [Fraction(1, 2), Fraction(1, 6), Fraction(1, 3), Fraction(1, 2)]


# --- issue 7.2: an annotation that starts with ">" ----------------------------------------------


@pytest.mark.parametrize("annotation", ['">"', '">accent"', '"<"', '"^>"'])
def test_an_annotation_starting_with_a_broken_rhythm_sign_keeps_every_note(annotation):
    song = read(f"e e {annotation}e3 d")
    assert song.codes == ["e'8", "e'8", "e'4.", "d'8"]


# --- issue 7.3: inline voices --------------------------------------------------------------------


def test_inline_voices_give_the_first_voice_and_a_warning():
    with pytest.warns(UserWarning, match=r"2 parts \(voices V:1, V:2\).*reading only the first"):
        song = read("[V:1] c d e f | g4 |\n[V:2] C D E F | G,4 |")
    assert song.codes == ["c'8", "d'8", "e'8", "f'8", "g'2"]


def test_voices_switched_on_one_line_and_a_header_voice_list():
    with pytest.warns(UserWarning, match="2 parts"):
        song = read("[V:1] c2 d2 [V:2] z4 [V:1] e2 f2 |", header="L:1/8\nV:1\nV:2\n")
    assert song.codes == ["c'4", "d'4", "e'4", "f'4"]
    with pytest.warns(UserWarning, match="voice overlay"):
        assert read("c2 d2 & E2 F2 | g4 |").codes == ["c'4", "d'4", "g'2"]


def test_another_voices_accidentals_rests_and_fields_do_not_leak_into_the_first():
    with pytest.warns(UserWarning, match="2 parts"):
        song = read("[V:1] c2 ^f2 | [V:2] z4 =F2 [L:1/4] [K:Bb] | [V:1] f2 B2 |")
    assert song.codes == ["c'4", "f#'4", "f'4", "b4"]


# --- issue 7.4: inline fields ---------------------------------------------------------------------


def test_inline_key_unit_meter_and_tempo_fields_take_effect_where_they_stand():
    song = read("B B [K:Bb] B B | [L:1/16] B B [L:1/4] B |")
    assert song.codes == ["b8", "b8", "bb8", "bb8", "bb16", "bb16", "bb4"]
    song = read("c2 c2 | [M:3/4] Z | c6 |", header="M:2/4\nL:1/8\n")
    assert song.codes == ["c'4", "c'4", "r2.", "c'2."] and song.meter == "2/4"
    assert read("[Q:1/4=90] c d").tempo_bpm == 90
    assert read("K:G\nf f [K:F] b b\nK:D\nc").codes == ["f#'8", "f#'8", "bb'8", "bb'8", "c#'8"]


# --- issue 7.5: key signatures, accidentals, clefs and octaves -------------------------------------


@pytest.mark.parametrize(
    "key, body, expected",
    [
        ("C ^f _b", "f b F B =f f", [78, 82, 66, 70, 77, 77]),
        ("D exp ^f", "c f d", [72, 78, 74]),
        ("Dmix=c", "c f", [72, 78]),
        ("D =c ^g", "c g", [72, 80]),
        ("Hp", "c f g", [73, 78, 79]),
        ("A Dorian", "f c", [78, 72]),
        ("EMin", "f d", [78, 74]),
        ("C clef=bass", "C D c", [60, 62, 72]),
        ("C bass", "C D c", [60, 62, 72]),
        ("C octave=-1", "C D c", [48, 50, 60]),
        ("C clef=bass octave=-1", "C c", [48, 60]),
        ("C treble-8", "C c", [48, 60]),
        ("C middle=d", "C c", [60, 72]),
        ("C transpose=2", "C c", [62, 74]),
        ("none", "f b", [77, 83]),
    ],
)
def test_key_fields_with_accidentals_clefs_octaves_and_transposition(key, body, expected):
    assert pitches(song_from_abc(f"X:1\nL:1/8\nK:{key}\n{body}\n")) == expected


def test_accidentals_carry_through_the_bar_in_every_octave_doubles_too():
    assert read("^^F F f | F").codes == ["f##8", "f##8", "f##'8", "f8"]
    assert read("__B B b | B").codes == ["bbb8", "bbb8", "bbb'8", "b8"]
    assert pitches(read("^c c c' C | c")) == [73, 73, 85, 61, 72]


def test_the_propagate_accidentals_directive_is_honoured():
    assert pitches(read("%%propagate-accidentals octave\n^c c c' | c")) == [73, 73, 84, 72]
    assert pitches(read("%%propagate-accidentals not\n^c c | c")) == [73, 72, 72]


def test_a_tied_note_keeps_its_accidental_across_the_bar_line():
    assert read("^c2- | c2 c2 |").codes == ["c#'2", "c'4"]


def test_transposition_moves_the_key_too():
    song = song_from_abc("X:1\nL:1/4\nK:C transpose=2\nC F |\n")
    assert song.codes == ["d4", "g4"] and song.key == "D major"
    assert song_from_abc("X:1\nL:1/4\nK:Ador transpose=-3\nA c |\n").key == "F# dorian"
    assert song_from_abc("X:1\nL:1/4\nK:Bb transpose=12\nB |\n").key == "Bb major"
    assert song_from_abc("X:1\nL:1/4\nK:F transpose=1\nB |\n").notes[0].spelling in ("b", "cb")


# --- issue 7.6: repeats written or played ----------------------------------------------------------


@pytest.mark.parametrize(
    "body, played",
    [
        ("|: C D :| E F |]", "C D C D E F"),
        ("C D :| E F :| G A |]", "C D C D E F E F G A"),
        ("C D || E F :| G A |]", "C D E F C D E F G A"),
        ("|: C :: D :| E |]", "C C D D E"),
        ("|: C :|: D :| E |]", "C C D D E"),
        ("|: C [1 D :| [2 E |]", "C D C E"),
        ("|: C |1 D :| |2 E |]", "C D C E"),
        ("|: C | [1 D :|2 E | F |]", "C D C E F"),
        ("|: C [1 D | E :| [2 F | G |]", "C D E C F G"),
        ("|: C [1,3 D :| [2 E :| F |]", "C D C E C D F"),
        ("|: C [1 D :| [2 E || F :| G |]", "C D C E F F G"),
        ("|: C |1 D :|\\\n2 E |]", "C D C E"),
        ("C :| D || E :| G |]", "C C D E E G"),
        ("C :| D |] E :| G |]", "C C D E E G"),
        ("|: C [1 D :| [2 E | F G :| A |]", "C D C E F G F G A"),
        ("C :| |: D || E :| F |]", "C C D E D E F"),
        ("C :| D [|] E :| F |]", "C C D E D E F"),
    ],
)
def test_repeats_are_played_pass_by_pass_with_their_endings(body, played):
    names = {60: "C", 62: "D", 64: "E", 65: "F", 67: "G", 69: "A"}
    song = read(body, header="L:1/4\n", repeats="played")
    assert " ".join(names[pitch] for pitch in pitches(song)) == played
    written = read(body, header="L:1/4\n")
    assert len(written) == len([c for c in body if c in "CDEFGA"])


def test_a_tune_whose_only_notes_lie_in_an_ending_never_played_is_one_clear_error():
    text = "X:1\nL:1/8\nK:C\n[2A"  # found by the fuzz test: abc2midi plays nothing of it either
    assert song_from_abc(text).codes == ["a8"]
    with pytest.raises(NabiyaError, match="no notes to play as played"):
        song_from_abc(text, repeats="played")


def test_the_header_parts_order_is_played():
    text = "X:1\nL:1/4\nP:ABA\nK:C\nP:A\nC D :|\nP:B\nE F |]\n"
    assert song_from_abc(text, repeats="played").codes == ["c4", "d4", "c4", "d4", "e4", "f4", "c4", "d4", "c4", "d4"]
    assert song_from_abc(text).codes == ["c4", "d4", "e4", "f4"]


def test_played_repeats_keep_the_tune_s_notation():
    song = read("|: G | c2 d2 :|", header="M:2/4\nL:1/8\n", repeats="played")
    assert song.pickup == Fraction(1, 2) and song.meter == "2/4"
    assert song.codes == ["g8", "c'4", "d'4", "g8", "c'4", "d'4"]


def test_repeats_must_be_written_or_played():
    with pytest.raises(NabiyaError, match="'written' or 'played'"):
        read("C", repeats="twice")


def test_read_song_and_convert_take_repeats_for_abc_and_musicxml(tmp_path):
    path = tmp_path / "reel.abc"
    path.write_text("X:1\nL:1/4\nK:C\n|: C D :| E |]\n")
    assert read_song(path).codes == ["c4", "d4", "e4"]
    assert read_song(path, tune=1, repeats="played").codes == ["c4", "d4", "c4", "d4", "e4"]
    convert(path, tmp_path / "reel.musicxml")
    score = tmp_path / "repeat.musicxml"
    _musicxml_with_a_repeat(score)
    assert read_song(score).codes == ["c4", "d4", "e4", "f4", "g2"]
    assert read_song(score, repeats="played").codes == ["c4", "d4", "e4", "f4", "c4", "d4", "e4", "f4", "g2"]
    midi = tmp_path / "reel.mid"
    convert(path, midi, repeats="played")
    assert read_song(midi, repeats="played").codes == read_song(midi).codes == ["c4", "d4", "c4", "d4", "e4"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "x#1", "title": "T", "notes": [[60, 1.0]]}\n')
    with pytest.raises(NabiyaError, match="as written"):
        read_song(corpus, repeats="played")


def _musicxml_with_a_repeat(path: Path) -> None:
    from music21 import bar, meter, note, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    first, second, third = stream.Measure(number=1), stream.Measure(number=2), stream.Measure(number=3)
    first.append([meter.TimeSignature("2/4"), note.Note("C4"), note.Note("D4")])
    first.leftBarline = bar.Repeat(direction="start")
    second.append([note.Note("E4"), note.Note("F4")])
    second.rightBarline = bar.Repeat(direction="end")
    third.append(note.Note("G4", quarterLength=2))
    path.write_bytes(GeneralObjectExporter(stream.Score([stream.Part([first, second, third])])).parse())


def test_the_cli_reads_repeats_as_asked(tmp_path):
    abc = tmp_path / "reel.abc"
    abc.write_text("X:1\nL:1/4\nK:C\n|: C D E F :| G A B c |]\n")
    for repeats, expected in ((None, 8), ("written", 8), ("played", 12)):
        out = tmp_path / f"{repeats}.txt"
        assert main(["convert", str(abc), str(out)] + (["--repeats", repeats] if repeats else [])) == 0
        assert len(read_song(out)) == expected
    assert main(["convert", "ode_to_joy", str(tmp_path / "ode.txt"), "--repeats", "played"]) == 0  # no repeats: as is


@pytest.mark.parametrize("command", ["run", "compare", "convert", "generate"])
def test_every_command_that_reads_a_song_offers_repeats_with_the_default_in_its_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--repeats {written,played}" in help_text and "written (the default" in help_text


# --- issue 7.7: tuplets written as abc2midi reads them -------------------------------------------


@pytest.mark.parametrize(
    "codes, written",
    [
        ("c:1/5 d:1/5 e:1/5 f:1/5 g:1/5 a4 b2", "(5:4:5C/2D/2E/2F/2G/2"),
        ("c:2/7 d:2/7 e:2/7 f:2/7 g:2/7 a:2/7 b:2/7 c2", "(7:4:7CDEFGAB"),
        ("c12 d12 e12 f4 g2", "(3CDE"),
        ("c6 d6 e6 f2", "(3C2D2E2"),
        ("c:1/3 d:2/3 e2 f4", "(3:2:2CD2"),
        ("c:1/5 r:1/5 e:3/5 f4 g2", "(5:4:3C/2z/2E3/2"),
    ],
)
def test_tuplets_are_written_as_tuplet_groups_and_read_back(codes, written):
    song = Song.from_codes(codes)
    text = song_to_abc(song)
    assert written in text
    body = text.splitlines()[-1]
    assert "/3" not in body and "/5" not in body and "/7" not in body  # abc2midi refuses such lengths
    assert song_from_abc(text).notes == song.notes


# --- issue 8: nothing hangs, every limit is a clean error, round trips hold ---------------------


@pytest.mark.parametrize(
    "header, body, what",
    [
        ("M:2/4\nL:1/8\n", "C2000000", "'C2000000' lasts 1000000 quarter notes"),
        ("M:2/4\nL:1/8\n", "C9999", "'C9999' lasts 9999/2 quarter notes"),
        ("M:6/8\nL:1/8\n", "|eC992f g3|", "'C992' lasts 496 quarter notes"),
        ("M:2/4\nL:1/8\n", "C2- C999999999999 |", "longer than nabiya's limit"),
        ("M:2/4\nL:1/8\n", "C" + "9" * 5000, "far longer"),
        ("M:2/4\nL:1/8\n", "Z99999999", "far longer"),
        ("M:2/4\nL:1/8\n", "C256- C258 |", "tied, the note lasts 257 quarter notes"),
        ("Q:1/4=0.00001\nL:1/8\n", "C", "Q:1/4=0.00001 is 1e-05 quarter notes a minute"),
        ("Q:1/4=5000\nL:1/8\n", "C", "tempo range"),
    ],
)
def test_huge_lengths_and_tempos_are_clean_errors_at_once(header, body, what):
    started = time.perf_counter()
    with pytest.raises(NabiyaError, match="line") as error:
        song_from_abc(f"X:1\n{header}K:C\n{body}\n", source="huge.abc")
    assert time.perf_counter() - started < 2  # music21 took 6 s for C999 and never ended for C9999
    assert what in str(error.value) and str(error.value).startswith("huge.abc")


def test_notes_far_longer_than_the_bar_are_read_and_written_quickly():
    song = read("|eC510f g3|", header="M:6/8\nL:1/8\n")
    assert song.notes[1].duration == 255
    started = time.perf_counter()
    assert song_from_abc(song_to_abc(song)).notes == song.notes
    assert time.perf_counter() - started < 2


def test_split_tunes_is_linear_in_blank_lines():
    text = "X:1\nK:C\n" + "\n\n".join("abc|" for _ in range(4000))
    started = time.perf_counter()
    tunes = split_tunes(text)
    assert time.perf_counter() - started < 2  # the quadratic one took 12 s for 2,000 bars
    assert len(tunes) == 1 and len(read_song_text(tunes)) == 12000


def read_song_text(tunes) -> Song:
    return song_from_abc("\n".join(tunes[0].lines))


def test_free_text_after_a_blank_line_still_ends_a_tune_and_music_does_not():
    tunes = split_tunes("X:1\nK:C\nabc|\n\ndef|\n\nX:2\nK:G\nGAB|\n\nThis is a note about the tune.\n")
    assert [len(song_from_abc("\n".join(t.lines))) for t in tunes] == [6, 3]
    assert [line for line in tunes[1].lines if "note" in line] == []


@pytest.mark.parametrize("codes", ["b,,,,,4 c4", "c,,,,,4 b,,,,,8", "g''''4 f#''''8", "c#,,,,,4 bb,,,,,4"])
def test_very_low_and_high_notes_survive_abc(codes):
    song = Song.from_codes(codes)
    assert song_from_abc(song_to_abc(song)).notes == song.notes


# --- errors name the place ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, place, what",
    [
        ("c4 | d2 [CEG]2 |", "line 4, column 9 (measure 2, note 2)", "chord (C4 E4 G4)"),
        ("c [K:Q] d", "line 4, column 3", "K:Q is not a key"),
        ("c {de f", "line 4, column 3", "grace notes"),
        ("c [Cd", "line 4, column 3", "not closed"),
        ("c [K:C", "line 4, column 3", "not closed"),
        ("c (0abc", "line 4, column 3", "tuplet"),
        ("c >>>> d", "line 4, column 3", "broken rhythm"),
        ("c ^ d", "line 4, column 3", "accidental"),
        ("c d/0", "line 4, column 3", "divides by zero"),
        ("|: c [99 d :|", "line 4, column 6", "endings up to"),
    ],
)
def test_errors_name_line_column_and_what(body, place, what):
    with pytest.raises(NabiyaError) as error, warnings.catch_warnings():
        warnings.simplefilter("error")
        song_from_abc(f"X:1\nL:1/8\nK:C\n{body}\n", source="bad.abc")
    message = str(error.value)
    assert message.startswith("bad.abc, tune X:1") and place in message and what in message, message


def test_a_stray_length_is_skipped_with_a_warning_as_abc2midi_skips_it():
    with pytest.warns(UserWarning, match=r"line 5, column 1: '/' is a length"):  # a line cut inside "d/"
        assert read("A B dc/d\n/ ed/e/ |").codes == ["a8", "b8", "d'8", "c'16", "d'8", "e'8", "d'16", "e'16"]
    with pytest.warns(UserWarning, match=r"line 4, column 6: '2' is a length with no note or rest before it; skipped"):
        assert read("C2 | 2z D2 |").codes == ["c4", "r8", "d4"]


def test_an_unknown_mode_is_read_as_major_with_a_warning():
    with pytest.warns(UserWarning, match=r"line 3: K:Bn: unknown mode 'n', read as major"):
        assert song_from_abc("X:1\nL:1/8\nK:Bn\nf c\n").key == "B major"


@pytest.mark.slow
def test_every_tune_of_music21s_abc_books_reads_or_names_its_place():
    """Every tune reads as a song or raises a NabiyaError naming its tune (no other exception)."""
    import music21

    books = Path(music21.__file__).parent / "corpus"
    paths = [path for book in ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk", "nottingham-dataset", "josquin")
             for path in sorted((books / book).rglob("*.abc"))]  # fmt: skip
    read_count = failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            text = _decode(path.read_bytes())
            for tune in split_tunes(text):
                try:  # played: the written reading and the repeats too
                    song_from_abc("\n".join(tune.lines), source=path.name, repeats="played")
                    read_count += 1
                except NabiyaError as error:
                    assert f"{path.name}, tune X:{tune.reference}" in str(error)
                    failed += 1
    assert read_count > 0.95 * (read_count + failed)
