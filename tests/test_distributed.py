"""Training on several devices and processes (JAX's distributed runtime): the same numbers, one writer, clean faults.

The processes are real ones on loopback, started as a user starts them
(``nabiya train ... --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I``); several
devices in one process are simulated with ``XLA_FLAGS=--xla_force_host_platform_device_count``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.numpy
from conftest import TINY_CORPUS, TINY_CORPUS_RUN
from time_limits import time_limit

from nabiya.batches import PackedWindows, TuneStreams
from nabiya.corpus_train import train
from nabiya.distributed import Cluster
from nabiya.errors import NabiyaError

# TINY_CORPUS_RUN as command-line options (the run of the tiny_corpus_run fixture), but its --steps.
TINY_OPTIONS = ["--corpus", *TINY_CORPUS, "--split", "60/20/20", "--quiet"] + [
    text for name, value in TINY_CORPUS_RUN.items() if name not in ("steps", "split")
    for text in ("--" + name.replace("_", "-"), str(value))]  # fmt: skip
# What a run of nabiya train leaves in its folder.
RUN_FILES = ("checkpoint.safetensors", "config.json", "curves.json", "curves.png", "model.safetensors", "split.json",
             "summary.json", "vocabulary.json")
# Float tolerance: 1 and 2 devices sum the batch's gradients in another order (measured: 2.4e-7 at most).
RTOL, ATOL = 1e-5, 1e-6
# A process that lost another must stop within this (the runtime's own detection is immediate).
STOP_SECONDS = 30


def _environment(**extra: str) -> dict:
    source = str(Path(__file__).resolve().parents[1] / "src")
    return dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Processes:
    """``nabiya train`` in ``count`` processes on loopback; every process is killed when the block ends.

    ``slurm``: launched as ``srun`` launches them (``--distributed``, the process count and ids in Slurm's
    variables, each as if on a node of its own), else with ``--coordinator``, ``--num-processes``, ``--process-id``.
    """

    def __init__(self, count: int, *args: str, peer_timeout: int = 30, extra: dict | None = None,
                 slurm: bool = False) -> None:  # fmt: skip
        self.args, self.count, self.peer_timeout, self.slurm = args, count, peer_timeout, slurm
        self.extra = extra or {}
        self.running: list[subprocess.Popen] = []

    def __enter__(self) -> list[subprocess.Popen]:
        port = _free_port()
        for index in range(self.count):
            if self.slurm:
                launch = ["--distributed", "--peer-timeout", str(self.peer_timeout)]
                env = _environment(SLURM_JOB_ID="4321", SLURM_STEP_NODELIST="localhost", SLURM_NTASKS=str(self.count),
                                   SLURM_PROCID=str(index), SLURM_LOCALID="0", SLURM_STEP_NUM_NODES=str(self.count),
                                   JAX_COORDINATOR_PORT=str(port))  # fmt: skip
            else:
                launch = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(self.count),
                          "--process-id", str(index), "--peer-timeout", str(self.peer_timeout)]  # fmt: skip
                env = _environment()
            args = self.extra.get(index, self.args)
            self.running.append(subprocess.Popen([sys.executable, "-m", "nabiya", "train", *args, *launch],
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 env=env))  # fmt: skip
        return self.running

    def __exit__(self, *exc) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
            process.communicate()


def _finish(processes, seconds: float = 300) -> list[tuple[int, str, str]]:
    return [(process.wait(timeout=seconds), *process.communicate()) for process in processes]


def _tensors(path: Path) -> dict:
    return safetensors.numpy.load_file(str(path))


def _assert_close_tensors(first: Path, second: Path) -> None:
    a, b = _tensors(first), _tensors(second)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=ATOL, err_msg=name)


def _checkpoint_step(folder: Path) -> int:
    with open(folder / "checkpoint.safetensors", "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        return json.loads(json.loads(file.read(size))["__metadata__"]["nabiya"])["step"]


def _wait_for_checkpoint(folder: Path, processes, *, after: int = 0, seconds: float = 240) -> None:
    """Until the run's checkpoint is of a step after ``after``."""
    deadline = time.monotonic() + seconds
    while not ((folder / "checkpoint.safetensors").exists() and _checkpoint_step(folder) > after):
        assert all(process.poll() is None for process in processes), [p.communicate() for p in processes]
        assert time.monotonic() < deadline, f"no checkpoint after step {after} appeared"
        time.sleep(0.01)


# --- each process makes only its rows ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TuneStreams, PackedWindows])
def test_a_process_makes_only_its_rows_of_the_global_batch(kind):
    """The rows a process makes are exactly those rows of the batch one process would make, at any step."""
    generator = np.random.default_rng(0)
    tunes = [np.concatenate([[1], generator.integers(3, 20, size=generator.integers(3, 40)), [2]]) for _ in range(30)]
    scored = np.ones(20, bool)
    whole, part = (kind(tunes, scored, batch_size=4, length=8, seed=3) for _ in range(2))
    for step in (0, 1, 7, 25, 3):  # across epochs, in any order
        rows = part.batch(step, slice(2, 4))
        assert rows.inputs.shape == (2, 8)
        for name in ("inputs", "targets", "mask", "score_mask", "resets", "segments", "positions", "tunes"):
            assert np.array_equal(getattr(rows, name), getattr(whole.batch(step), name)[2:4]), (step, name)
    evaluation = kind(tunes, scored, batch_size=4, length=8, shuffle=False)
    for rows, batch in zip(evaluation.epoch(0, slice(0, 2)), evaluation.epoch(0), strict=True):
        assert np.array_equal(rows.targets, batch.targets[:2])


def test_a_batch_that_does_not_divide_among_the_devices_is_refused():
    two_devices = Cluster(mesh=SimpleNamespace(size=2))
    with pytest.raises(NabiyaError, match=r"^the batch size 3 does not divide among the run's 2 devices \(2 devices\): "
                                          r"choose a multiple of 2$"):  # fmt: skip
        two_devices.check_batch_size(3)
    two_devices.check_batch_size(4)


# --- the same numbers on 1 device, 2 devices, 2 processes -----------------------------------------------------


@pytest.mark.slow
def test_two_devices_of_one_process_train_as_one_device_does(tiny_corpus_run, tmp_path):
    env = _environment(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    run = subprocess.run([sys.executable, "-m", "nabiya", "train", *TINY_OPTIONS, "--steps", "40",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    for name in ("checkpoint.safetensors", "model.safetensors"):
        _assert_close_tensors(tmp_path / "run" / name, tiny_corpus_run.folder / name)


@pytest.mark.slow
def test_two_processes_train_as_one_and_resume_a_run_of_one(tiny_corpus_run, tmp_path):
    """A run of one process stopped after its first block, resumed on two processes: the weights and the loss
    curves of the run that one process did alone; process 0 alone writes and prints."""
    folder = tmp_path / "run"
    stopped = train(TINY_CORPUS, preset="folk-lstm", out=folder, minutes=1e-9, progress=False, **TINY_CORPUS_RUN)
    assert stopped.steps == 5
    with _Processes(2, "--resume", str(folder), "--quiet") as processes:
        (status_0, out_0, err_0), (status_1, out_1, err_1) = _finish(processes)
    assert (status_0, status_1) == (0, 0), (err_0, err_1)
    assert "folk-lstm: 40 steps, finished" in out_0 and (out_1, err_1) == ("", "")
    for name in ("checkpoint.safetensors", "model.safetensors"):
        _assert_close_tensors(folder / name, tiny_corpus_run.folder / name)
    curves, alone = (json.loads((path / "curves.json").read_text()) for path in (folder, tiny_corpus_run.folder))
    assert curves["train_steps"] == alone["train_steps"] and curves["valid_steps"] == alone["valid_steps"]
    np.testing.assert_allclose(curves["train_nll"], alone["train_nll"], rtol=RTOL)
    np.testing.assert_allclose(curves["valid_nll"], alone["valid_nll"], rtol=RTOL)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["best_step"] == tiny_corpus_run.best_step
    assert sorted(path.name for path in folder.iterdir()) == sorted(RUN_FILES)  # no other file, none half-written


# --- faults --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_process_stops_the_run_cleanly_and_it_resumes_on_one(tmp_path):
    """Killing one of two processes (-9) stops the other within the timeout, with one line; the run then continues
    from its last checkpoint on one process."""
    folder = tmp_path / "run"
    with _Processes(2, *TINY_OPTIONS, "--steps", "100000", "--out", str(folder)) as processes:
        _wait_for_checkpoint(folder, processes)
        processes[1].kill()
        killed = time.monotonic()
        status, _, err = _finish(processes[:1], STOP_SECONDS)[0]
        stopped_after = time.monotonic() - killed
    assert status == 2 and stopped_after < STOP_SECONDS
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nabiya: error: process 0 of 2 lost contact with another process "
                                                   "of the run, which died or was killed (")  # fmt: skip
    assert lines[0].endswith(f"resume the run from its last checkpoint: nabiya train --resume {folder}")
    killed_at = _checkpoint_step(folder)
    assert killed_at >= 10

    resumed = train(resume=folder, minutes=1e-9, progress=False)  # one process: another number of processes
    assert resumed.steps == killed_at + 5 and resumed.stopped == "time limit"
    assert not [path for path in folder.iterdir() if path.name.startswith(".")]


# A process of a run that counts blocks and asks after each whether the run is preempted (as the trainer does).
_COUNTING_BLOCKS = """
import sys, time
from nabiya import distributed
cluster = distributed.join(distributed.Launch(sys.argv[1], 2, int(sys.argv[2]), 30))
print("joined", flush=True)
for block in range(1, 1000):
    if cluster.preempted(block):
        print(f"preempted at block {block}", flush=True)
        break
    time.sleep(0.02)
distributed.leave()
"""


@pytest.mark.slow
def test_a_scheduler_s_sigterm_to_one_process_stops_every_process_at_the_same_block():
    """SIGTERM (what Slurm sends before it evicts a job) reaches one process; all see it after the same block,
    so the trainer stops every process there, with a checkpoint."""
    port = _free_port()
    processes = [subprocess.Popen([sys.executable, "-c", _COUNTING_BLOCKS, f"127.0.0.1:{port}", str(index)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment())
                 for index in range(2)]  # fmt: skip
    try:
        with time_limit(120):  # a hard bound on the reads below
            assert [process.stdout.readline() for process in processes] == ["joined\n", "joined\n"]
            time.sleep(0.2)
            processes[1].send_signal(signal.SIGTERM)
            results = [(process.wait(timeout=STOP_SECONDS), process.stdout.read()) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert results[0] == results[1] and results[0][0] == 0 and results[0][1].startswith("preempted at block "), results


@pytest.mark.slow
def test_processes_started_with_different_settings_are_refused_naming_the_difference(tmp_path):
    """Started by Slurm (``srun ... nabiya train --distributed``): they join, then refuse to train."""
    run = [*TINY_OPTIONS, "--out", str(tmp_path / "run")]
    with _Processes(2, *run, "--steps", "40", extra={1: (*run, "--steps", "41")}, slurm=True) as processes:
        results = _finish(processes, 120)
    line = ("nabiya: error: the processes disagree on the settings: train.steps is 40 in process 0 but 41 in "
            "process 1; start every process with the same command and corpus\n")  # fmt: skip
    assert results == [(2, "", line), (2, "", line)]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_coordinator_that_cannot_be_reached_is_one_line_after_the_timeout(tmp_path):
    port = _free_port()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "nabiya", "train", *TINY_OPTIONS, "--out", str(tmp_path / "run"),
                             "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "1",
                             "--peer-timeout", "2"], capture_output=True, text=True, env=_environment(), timeout=120)  # fmt: skip
    assert time.monotonic() - started < 60
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"nabiya: error: cannot reach the coordinator 127.0.0.1:{port} within 2 s: is process 0 "
                             "running there, and are the address and port right?\n")  # fmt: skip
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_distributed_without_a_cluster_launcher_is_one_line(tmp_path):
    env = {name: value for name, value in _environment().items()
           if not name.startswith(("SLURM_", "OMPI_", "PMI_", "JAX_COORDINATOR", "KUBERNETES_"))}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "nabiya", "train", *TINY_OPTIONS, "--out", str(tmp_path / "run"),
                             "--distributed"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("nabiya: error: no cluster launcher to take the processes from (JAX detects Slurm, "
                             "Open MPI and Kubernetes, and reads JAX_COORDINATOR_ADDRESS): give --coordinator, "
                             "--num-processes and --process-id\n")  # fmt: skip
    assert not (tmp_path / "run").exists()

