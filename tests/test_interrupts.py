"""Ctrl-C and SIGKILL at random moments: one line and exit 130, nothing half-written, leftovers cleaned."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nabiya.cli import main
from nabiya.errors import NabiyaError
from nabiya.fileio import OUTPUT_MANIFEST


def _leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith(".nabiya-"))


def _complete_or_absent(out: Path) -> None:
    """An output folder is there whole (its manifest lists what it holds) or not at all."""
    if not out.exists():
        return
    import json

    listed = json.loads((out / OUTPUT_MANIFEST).read_text())["files"]
    assert all((out / name).exists() for name in listed)


# --- in-process: Ctrl-C at a chosen moment ---------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_status_130(monkeypatch, capsys, tmp_path):
    import nabiya.experiment

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nabiya.experiment, "run", interrupted)
    assert main(["run", "--quiet", "--out", str(tmp_path / "run")]) == 130
    captured = capsys.readouterr()
    assert captured.err == "nabiya: interrupted\n" and captured.out == ""
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_writing_leaves_no_half_written_folder(monkeypatch, capsys, tmp_path):
    import nabiya.report

    written = []

    def write_then_interrupt(song, path):
        written.append(path)
        if len(written) == 3:
            raise KeyboardInterrupt
        path.write_text("part")

    monkeypatch.setattr(nabiya.report, "_write_song", write_then_interrupt)
    assert main(["convert", "nabiya", str(tmp_path / "x.abc")]) == 0  # convert does not go through report
    capsys.readouterr()
    from nabiya.music.songs import nabiya as song

    with pytest.raises(KeyboardInterrupt):
        nabiya.report.write_songs({"generated": song()}, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["x.abc"]


# --- real processes, signals at random moments -----------------------------------------------------


def _start(args: list[str], cwd: Path) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen([sys.executable, "-m", "nabiya", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        for line in process.stderr:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def _wait_for(lines: list[str], text: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``text`` shows on standard error (the command is past its start-up) or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(text in line for line in lines):
            return
        time.sleep(0.05)


COMMANDS = {
    "run": ["run", "mlp", "--epochs", "300", "--out", "out"],
    "generate": ["generate", "{model}", "--length", "2000", "--out", "out"],
    "convert": ["convert", "long.txt", "out.svg"],
}


def _args(command: str, model: Path) -> list[str]:
    return [part.replace("{model}", str(model)) for part in COMMANDS[command]]


def _long_song(folder: Path) -> None:
    (folder / "long.txt").write_text(" ".join(["g8 e8 e4 f8 d8 d4 c8 d8 e8 f8 g8 g8 g4"] * 150))


@pytest.mark.slow
@pytest.mark.parametrize("command, seed", [("run", 1), ("generate", 2), ("convert", 3)])
def test_ctrl_c_at_a_random_moment(command, seed, tmp_path, model_file):
    _long_song(tmp_path)
    process, lines = _start(_args(command, model_file), tmp_path)
    _wait_for(lines, "compiling" if command == "run" else "", process, timeout=60)
    time.sleep(random.Random(seed).uniform(0.0, 4.0))
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    time.sleep(0.2)  # the reader thread catches up
    err = "".join(lines)
    assert "Traceback" not in err, err
    # It may have finished first (0), or been stopped by the signal after its work was done
    # (-SIGINT: the shell says 130 too); interrupted in its work, it says so in one line.
    assert process.returncode in (0, 130, -signal.SIGINT), err
    if process.returncode == 130:
        assert err.rstrip().splitlines()[-1] == "nabiya: interrupted", err
    _complete_or_absent(tmp_path / "out")
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("command, seed", [("run", 4), ("generate", 5), ("convert", 6)])
def test_sigkill_at_a_random_moment_then_the_next_run_cleans_up(command, seed, tmp_path, model_file):
    _long_song(tmp_path)
    process, lines = _start(_args(command, model_file), tmp_path)
    _wait_for(lines, "compiling" if command == "run" else "", process, timeout=60)
    time.sleep(random.Random(seed).uniform(0.0, 4.0))
    process.kill()
    process.wait(timeout=60)
    _complete_or_absent(tmp_path / "out")
    assert not [name for name in os.listdir(tmp_path) if name.startswith("out") and name not in ("out", "out.svg")]
    # The next command into the same place removes what the killed one left.
    again = subprocess.run([sys.executable, "-m", "nabiya", "convert", "nabiya", "again.mid"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_kill_between_the_two_renames_of_a_replacement_is_undone(tmp_path):
    """The old output renamed aside, the process killed before the new one is renamed in: put back."""
    script = (
        "import os, sys\n"
        "from nabiya.fileio import staged_folder\n"
        "real_rename = os.rename\n"
        "def rename(a, b):\n"
        "    real_rename(a, b)\n"
        "    if str(b).endswith('.tmp'):\n"
        "        os.kill(os.getpid(), 9)\n"
        "os.rename = rename\n"
        "with staged_folder(sys.argv[1], force=True) as staging:\n"
        "    (staging / 'summary.json').write_text('new')\n"
    )
    out = tmp_path / "out"
    from nabiya.fileio import staged_folder

    with staged_folder(out) as staging:
        (staging / "summary.json").write_text("old")
    killed = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, timeout=120)
    assert killed.returncode == -9 and not out.exists()
    assert main(["convert", "nabiya", str(tmp_path / "again.mid")]) == 0
    assert (out / "summary.json").read_text() == "old" and _leftovers(tmp_path) == []
