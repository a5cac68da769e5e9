"""The nabiya command ends without tearing its interpreter down, yet nothing a normal exit owes is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from nabiya import cli


# Standard output into a pipe is buffered (unless PYTHONUNBUFFERED says otherwise): what a quick exit must flush.
BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                          env=BUFFERED)  # fmt: skip


def test_the_status_buffered_output_and_exit_handlers_all_survive_a_quick_exit():
    done = _python("""
        import atexit, sys, tempfile, weakref
        from nabiya.quick_exit import quick_exit
        atexit.register(lambda: print("handler ran", file=sys.stderr))
        folder = tempfile.TemporaryDirectory()             # removed by its finalizer at exit
        print(folder.name, end="")                          # still in the pipe's buffer
        quick_exit(3)
        """)  # fmt: skip
    assert done.returncode == 3
    assert done.stdout.startswith("/") and "handler ran" in done.stderr
    from pathlib import Path

    assert not Path(done.stdout).exists()


def test_a_thread_still_running_is_waited_for():
    done = _python("""
        import threading, time
        from nabiya.quick_exit import quick_exit
        def late():
            time.sleep(0.3)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        quick_exit(0)
        """)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "thread done\n"


def test_the_command_prints_everything_through_a_pipe_and_keeps_its_status(capsys):
    assert cli.main(["songs"]) == 0
    in_process = capsys.readouterr().out
    command = subprocess.run([sys.executable, "-m", "nabiya", "songs"], capture_output=True, text=True, timeout=60,
                             env=BUFFERED)  # fmt: skip
    assert command.returncode == 0 and command.stdout == in_process and in_process.count("\n") > 5
    bad = subprocess.run([sys.executable, "-m", "nabiya", "songs", "--no-such-option"], capture_output=True,
                         text=True, timeout=60, env=BUFFERED)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("nabiya: error: ") and bad.stderr.count("\n") == 1
