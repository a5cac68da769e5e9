"""Where a warm ``nabiya run`` spends its time outside training: a timeline of its phases.

Runs ``nabiya run`` (the CLI's own code path, ``nabiya.cli.main``) in fresh processes, with
timers wrapped around its phases, and prints the median of each phase over the repeats:

- **imports**: from the interpreter's start until the run starts building the model (the
  interpreter, nabiya's CLI, JAX, reading and encoding the song), less the build;
- **build**: the untrained model (``experiment.build_model``);
- **compile (training)**: tracing, lowering and compiling (or loading from the persistent
  cache) the programs ``train.train`` runs (JAX's own duration events); **training**: the rest
  of ``train.train``;
- **predictions**: both predictions after training (``experiment.evaluate_training``);
- **writing**: the run folder (``report.write_run``), after training;
- **end to end** (the process, as the parent sees it, ending as the ``nabiya`` command ends), and
  **outside training** = end to end less training and its compilation; **after the command**: from
  the command's return to the process's end (the interpreter's exit). Work done in threads while training runs (the song's
  own files, the prediction programs) is listed apart: it costs no waiting unless it ends later.

The first process fills the compilation cache (``$NABIYA_CACHE_DIR``, here a fresh temporary
folder unless ``--cache`` names one) and is not counted: "warm" is what a user's second run
sees. Wall and CPU seconds are both shown: on a machine shared with other work, wall time
inflates and CPU time much less.

    python benchmarks/bench_run_phases.py                        # stateful2, 2000 epochs, 3 repeats
    git archive 786382d src | tar -x -C /tmp/before              # an earlier nabiya, side by side
    python benchmarks/bench_run_phases.py --before /tmp/before/src --repeats 5
    python benchmarks/bench_run_phases.py --epochs 200 --repeats 5 -- --no-audio
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, os, sys, threading, time
T0 = time.perf_counter()
events = []
def wrap(module, name, label):
    original = getattr(module, name)
    def timed(*args, **kwargs):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            events.append((label, threading.current_thread().name, start - T0, time.perf_counter() - T0,
                           time.thread_time() - cpu))
    setattr(module, name, timed)
compilations = []
import nabiya.cli as cli
import nabiya.experiment as experiment
import nabiya.report as report
def instrument():
    import jax.monitoring
    import nabiya.training as train
    def listener(event, duration, **kwargs):
        if event in ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                     "/jax/core/compile/backend_compile_duration"):  # the last includes persistent-cache loads
            compilations.append((event, threading.current_thread().name, time.perf_counter() - T0, duration))
    jax.monitoring.register_event_duration_secs_listener(listener)
    wrap(train, "train", "train")
original_cache = cli._use_compilation_cache
def use_cache():
    original_cache()
    instrument()
cli._use_compilation_cache = use_cache
wrap(experiment, "build_model", "build")
wrap(experiment, "evaluate_training", "predictions")
wrap(report, "write_run", "writing")
if hasattr(report, "render_song_files"):  # before this branch: the song's files in a thread
    original_render = report.render_song_files.__init__
    def render(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.thread_time()
        original_render(self, *args, **kwargs)
        events.append(("song files", threading.current_thread().name, start - T0, time.perf_counter() - T0,
                       time.thread_time() - cpu))
    report.render_song_files.__init__ = render
status = cli.main(sys.argv[1:])
end = time.perf_counter() - T0
json.dump({"events": events, "compilations": compilations, "end": end, "cpu": time.process_time(), "status": status},
          open(os.environ["NABIYA_PHASES_OUT"], "w"))
if hasattr(cli, "console_main"):  # the nabiya command ends this way (before it: the interpreter's own exit)
    from nabiya.quick_exit import quick_exit
    quick_exit(status)
"""


def run_once(arguments: list[str], env: dict) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "phases.json")
        started = time.perf_counter()
        usage_before = os.times()
        subprocess.run([sys.executable, "-c", _CHILD, "run", *arguments, "--out", os.path.join(scratch, "run")],
                       env={**env, "NABIYA_PHASES_OUT": out}, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        usage = os.times()
        data = json.load(open(out))
    data["wall"] = wall
    data["process_cpu"] = (usage.children_user - usage_before.children_user) + (
        usage.children_system - usage_before.children_system)
    return data


def phases(data: dict) -> dict[str, tuple[float, float]]:
    """``{phase: (wall seconds, CPU seconds)}`` of one process (see the module docstring)."""
    events = data["events"]

    def first(label):
        return next(event for event in events if event[0] == label)

    build, train, writing = first("build"), first("train"), first("writing")
    main = [event for event in events if event[0] == "predictions" and event[1] == "MainThread"]
    ahead = [event for event in events if event[0] == "predictions" and event[1] != "MainThread"]
    in_training = sum(duration for _, thread, at, duration in data["compilations"] if train[2] <= at <= train[3]
                      and thread == "MainThread")  # fmt: skip
    result = {
        "imports": (build[2], None),
        "build": (build[3] - build[2], build[4]),
        "compile (training)": (in_training, None),
        "training": (train[3] - train[2] - in_training, None),
        "predictions": (sum(e[3] - e[2] for e in main), sum(e[4] for e in main)),
        "writing": (writing[3] - writing[2], writing[4]),
        "end to end": (data["wall"], data["process_cpu"]),
        "outside training": (data["wall"] - (train[3] - train[2]), None),
        "after the command (exit)": (data["wall"] - data["end"], None),
        "meanwhile: song files (thread)": (sum(e[3] - e[2] for e in events if e[0] == "song files"), None),
        "meanwhile: prediction programs": (sum(e[3] - e[2] for e in ahead), None),
    }
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", metavar="SRC",
                        help="another nabiya's src folder (e.g. from 'git archive'), run in turn with this one")
    parser.add_argument("--cache", help="the compilation cache folder (default: a fresh temporary one)")
    parser.add_argument("extra", nargs="*", help="more arguments for nabiya run (after --)")
    args = parser.parse_args(argv)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src")
    sources = {"after": os.path.abspath(here)}
    if args.before:
        sources = {"before": os.path.abspath(args.before), **sources}
    arguments = ["--epochs", str(args.epochs), "--quiet", *args.extra]
    print(f"load average {os.getloadavg()[0]:.1f}; nabiya run {' '.join(arguments)}", flush=True)
    environments = {}
    for name, source in sources.items():
        cache = args.cache or tempfile.mkdtemp(prefix=f"nabiya-bench-xla-{name}-")
        environments[name] = {**os.environ, "NABIYA_CACHE_DIR": cache, "PYTHONPATH": source}
        run_once(arguments, environments[name])  # fills the cache
    rows = {name: [] for name in sources}
    for _ in range(args.repeats):  # in turn, so that both see the same load
        for name in sources:
            rows[name].append(phases(run_once(arguments, environments[name])))
    header = "".join(f"{f'{name}: wall':>14}{'CPU':>7}" for name in sources)
    print(f"{'phase (median of ' + str(args.repeats) + ', seconds)':<34}{header}")
    for phase in rows["after"][0]:
        cells = ""
        for name in sources:
            walls = [row[phase][0] for row in rows[name]]
            cpus = [row[phase][1] for row in rows[name] if row[phase][1] is not None]
            cells += f"{statistics.median(walls):14.2f}" + (f"{statistics.median(cpus):7.2f}" if cpus else f"{'':>7}")
        print(f"{phase:<34}{cells}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
