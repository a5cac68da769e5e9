"""Training on several devices and processes, on JAX's distributed runtime; one process writes.

nabiya trains **data-parallel**. Every device holds the whole model (the parameters and the
optimizer's state are *replicated*); the global batch of ``B`` rows is *split by rows* over
a one-axis device mesh (``"data"``). The compiled training step is the same program as on
one device: XLA's SPMD partitioner reads the shardings of its inputs and reduces the
gradients across devices inside the step (an all-reduce; between the processes of a CPU
run over TCP by gloo, on GPUs by NCCL). So one process with one device, one process with
several devices (a GPU machine, or ``XLA_FLAGS=--xla_force_host_platform_device_count=N``)
and several processes all train on the same global batch and give the same numbers, up
to the order in which floats are summed.

Who does what in a run of ``P`` processes:

- **every process** joins the run (:func:`join`: ``jax.distributed.initialize`` with
  timeouts, once, before any JAX computation), reads and tokenizes the corpus, builds the
  model from the seed, and makes **only its own rows** of each batch
  (:meth:`Cluster.rows`; :class:`~nabiya.batches.TuneStreams` and
  :class:`~nabiya.batches.PackedWindows` make any rows of any step);
- **process 0 alone touches the run folder**: it writes the config, split, checkpoints,
  model file and curves, shows progress, and reads what a resumed run needs; the others
  get what it read (:meth:`Cluster.shared`), so the run folder needs no shared file system;
- **the processes agree**, at the start, on their settings and data (each sends its own;
  a difference is refused on every process, naming it: :meth:`Cluster.agree`), and after
  every block on whether to stop (an interrupt in any process stops all; process 0's
  clock decides a time limit).

**Faults.** A process that cannot join within the timeout ends with one line naming the
coordinator. When a process dies mid-run, the others' next collective fails at once (the
TCP connection is gone): each stops with one line (:class:`LostProcess`) and exits
without waiting for the dead one. If process 0 itself dies, JAX's runtime ends the
others at once with its own message ("Terminating process because the JAX distributed
service detected fatal errors"); a process that hangs without dying is declared dead after
the timeout (JAX's heartbeat), and the run ends the same way. Nothing hangs longer.

Example (two processes on one machine; the same in every process but ``process_id``)::

    from nabiya import distributed
    distributed.join(distributed.Launch("127.0.0.1:4321", num_processes=2, process_id=0))
    result = nabiya.train("miscFolk", steps=500)    # every process; only process 0 writes
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np

from nabiya.corpus_config import json_differences
from nabiya.errors import NabiyaError

DATA_AXIS = "data"
DEFAULT_TIMEOUT_SECONDS = 120
# JAX's own joining deadline is this much later than nabiya's, so that nabiya's one line comes first.
JOIN_GRACE_SECONDS = 30

T = TypeVar("T")


class ClusterError(NabiyaError):
    """An error that every process of a run raises alike (they agreed on it), so all can leave together."""


class LostProcess(NabiyaError):
    """Another process of the run died or cannot be reached mid-run: this one leaves at once (:func:`leave`)."""


@dataclass(frozen=True)
class Launch:
    """How this process joins a run of several processes.

    Attributes:
        coordinator: ``"HOST:PORT"`` where process 0 serves the run's coordination; every
            process gives the same. None (with the next two None): JAX takes all three from
            the cluster launcher's environment (Slurm, Open MPI, Kubernetes; see the README).
        num_processes: the processes of the run.
        process_id: this process's number, ``0 .. num_processes - 1``; process 0 writes.
        timeout_seconds: how long to wait for every process to join, and how long a process
            may fall silent (no heartbeat) before the run is stopped.

    Example:
        >>> Launch("127.0.0.1:4321", num_processes=2, process_id=1).validate().process_id
        1
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS

    @property
    def detected(self) -> bool:
        """Whether JAX detects the coordinator, process count and id from the environment."""
        return self.coordinator is None and self.num_processes is None and self.process_id is None

    def validate(self) -> "Launch":
        """Raises:
        NabiyaError: for a malformed address, an id outside the count, a timeout below 1 s."""
        given = [self.coordinator is not None, self.num_processes is not None, self.process_id is not None]
        if any(given) and not all(given):
            raise NabiyaError("give --coordinator HOST:PORT, --num-processes N and --process-id I together "
                              "(or --distributed alone, to take them from the cluster launcher)")  # fmt: skip
        if not (isinstance(self.timeout_seconds, int) and self.timeout_seconds >= 1):
            raise NabiyaError(f"the timeout of a distributed run is a whole number of seconds of at least 1, "
                              f"not {self.timeout_seconds!r}")  # fmt: skip
        if self.detected:
            return self
        coordinator_address(self.coordinator)
        if not (isinstance(self.num_processes, int) and self.num_processes >= 1):
            raise NabiyaError(f"--num-processes must be at least 1, not {self.num_processes!r}")
        if not (isinstance(self.process_id, int) and 0 <= self.process_id < self.num_processes):
            raise NabiyaError(f"--process-id must be from 0 to {self.num_processes - 1} "
                              f"(--num-processes {self.num_processes}), not {self.process_id!r}")  # fmt: skip
        return self


def coordinator_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``"HOST:PORT"`` (an IPv6 host in brackets), the host resolved.

    Raises:
        NabiyaError: naming the address, when it is not HOST:PORT or its host does not resolve.

    Example:
        >>> coordinator_address("127.0.0.1:4321")
        ('127.0.0.1', 4321)
    """
    host, colon, port = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise NabiyaError(f"--coordinator {text!r} is not HOST:PORT (a host name or address, a port 1-65535), "
                          "e.g. 10.0.0.1:4321")  # fmt: skip
    try:
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise NabiyaError(f"--coordinator {text!r}: the host {host!r} cannot be resolved "
                          f"({getattr(error, 'strerror', None) or error})") from None  # fmt: skip
    return host, int(port)


# --- joining and leaving ---------------------------------------------------------------------------


def join(launch: Launch) -> "Cluster":
    """Join a run of several processes: ``jax.distributed.initialize`` with timeouts, then a first collective.

    Call it once per process, before any JAX computation (``nabiya train --coordinator ...``
    does). On CPUs the processes talk through gloo (TCP). If the run is not whole within
    ``launch.timeout_seconds`` (the coordinator cannot be reached, or a process never
    starts), this process prints one line, ``nabiya: error: ...``, and exits with status 2:
    JAX would end it at that point anyway, with a stack trace instead of the reason.

    Returns:
        The :class:`Cluster` of every device of every process.

    Raises:
        NabiyaError: for a bad launch, a second join, a join after JAX has computed, or no
            cluster launcher to detect.
    """
    import jax

    launch = launch.validate()
    if jax.distributed.is_initialized():
        raise NabiyaError("this process has joined a distributed run already (join once per process)")
    timeout = launch.timeout_seconds
    watchdog = threading.Timer(timeout, _give_up_joining, args=(launch,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(launch.coordinator, launch.num_processes, launch.process_id,
                                   initialization_timeout=timeout + JOIN_GRACE_SECONDS,
                                   heartbeat_timeout_seconds=timeout, shutdown_timeout_seconds=timeout)  # fmt: skip
        # CPU processes sum across each other over TCP (gloo); set after joining (a failed join changes
        # nothing) and before the first computation, which starts the backend.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        cluster = current_cluster()
        with _quiet_stdout():  # gloo says "[Gloo] Rank 0 is connected to 1 peer ranks..." on standard output
            cluster.total(1)  # the first collective: every process is there, and gloo's peers are connected
    except (RuntimeError, ValueError) as error:
        if isinstance(error, NabiyaError):
            raise
        raise NabiyaError(_join_failure(launch, error)) from None
    finally:
        watchdog.cancel()
    return cluster


def _join_failure(launch: Launch, error: Exception) -> str:
    text = str(error)
    if "before any JAX computations" in text or "backend is already initialized" in text:
        return ("join a distributed run before any JAX computation (in a notebook: restart the kernel and "
                "call nabiya.distributed.join first)")  # fmt: skip
    if launch.detected:
        return ("no cluster launcher to take the processes from (JAX detects Slurm, Open MPI and Kubernetes, "
                "and reads JAX_COORDINATOR_ADDRESS): give --coordinator, --num-processes and --process-id")  # fmt: skip
    hint = " (is the port in use?)" if "Failed to start RPC server" in text else ""
    return f"cannot join the run at {launch.coordinator}: {_jax_reason(error)}{hint}"


def _give_up_joining(launch: Launch) -> None:
    """The watchdog of :func:`join`: one line, then exit (JAX's own deadline would abort the process)."""
    seconds = launch.timeout_seconds
    if launch.detected:
        message = f"the processes of the run did not all join within {seconds} s (taken from the cluster launcher)"
    elif launch.process_id != 0 and not _reachable(launch.coordinator):
        message = (f"cannot reach the coordinator {launch.coordinator} within {seconds} s: is process 0 running "
                   "there, and are the address and port right?")  # fmt: skip
    else:
        message = (f"the run's {launch.num_processes} processes did not all join within {seconds} s "
                   f"(coordinator {launch.coordinator}): is every process started, with the same --num-processes "
                   "and a different --process-id?")  # fmt: skip
    _exit_now(f"nabiya: error: {message}", 2)


def _reachable(coordinator: str) -> bool:
    try:
        host, port = coordinator_address(coordinator)
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except (OSError, NabiyaError):
        return False


def leave(error: BaseException | None = None) -> None:
    """Leave the run, if this process joined one: with the others, or at once after a :class:`LostProcess`.

    With the others, ``jax.distributed.shutdown()`` waits until every process leaves (after
    success, or an error they all raise alike). After a lost process there is nobody to
    wait for: this process prints the error line and exits with status 2 at once (waiting
    would end, after the timeout, with JAX aborting the process).
    """
    import jax

    if not jax.distributed.is_initialized():
        return
    if isinstance(error, LostProcess):
        _exit_now(f"nabiya: error: {error}", 2)
    jax.distributed.shutdown()


def _exit_now(line: str, status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.write(2, (line + "\n").encode())
    os._exit(status)


@contextlib.contextmanager
def _quiet_stdout():
    """Standard output (file descriptor 1, where native code writes too) goes nowhere for a moment."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.close(sink)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# --- the cluster: devices, rows, placement, agreement -------------------------------------------------


def current_cluster() -> "Cluster":
    """The devices of every process JAX knows (one process and its devices, unless :func:`join` came first).

    Example:
        >>> cluster = current_cluster()
        >>> cluster.process_count, cluster.is_writer, cluster.rows(32)
        (1, True, slice(0, 32, None))
    """
    import jax
    from jax.sharding import Mesh

    return Cluster(Mesh(np.array(jax.devices()), (DATA_AXIS,)), jax.process_index(), jax.process_count())


_LOST = re.compile(r"gloo|connection (reset|closed|refused)|socket closed|unavailable|heartbeat|peer", re.I)


@dataclass(frozen=True)
class Cluster:
    """The devices of a run, how a batch is split among them, and what the processes share.

    Attributes:
        mesh: a one-axis ``jax.sharding.Mesh`` (``"data"``) of every device of every process.
        process_index: this process's number (0 writes the run folder and prints).
        process_count: the processes of the run.

    Every method is cheap and changes nothing on one device of one process (the arrays stay
    where they are, ``agree`` and ``shared`` just compute), so the trainer has one code path.
    """

    mesh: Any
    process_index: int = 0
    process_count: int = 1

    @property
    def device_count(self) -> int:
        return int(self.mesh.size)

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run folder and prints (process 0)."""
        return self.process_index == 0

    @property
    def spread(self) -> bool:
        """Whether arrays are placed on the mesh (more than one device)."""
        return self.device_count > 1

    def describe(self) -> str:
        """``"2 processes × 1 device"`` / ``"1 device"``."""
        per_process = self.device_count // max(self.process_count, 1)
        devices = f"{per_process} device{'s' if per_process != 1 else ''}"
        return devices if self.process_count == 1 else f"{self.process_count} processes × {devices}"

    # --- rows and placement ---

    def check_batch_size(self, batch_size: int) -> None:
        """Raises:
        NabiyaError: when ``batch_size`` rows do not divide evenly among the devices."""
        if batch_size % self.device_count:
            raise NabiyaError(f"the batch size {batch_size} does not divide among the run's {self.device_count} "
                              f"devices ({self.describe()}): choose a multiple of {self.device_count}")  # fmt: skip

    def rows(self, batch_size: int) -> slice:
        """The rows of a global batch of ``batch_size`` that this process makes (contiguous; all on one process)."""
        if self.process_count == 1:
            return slice(0, batch_size)
        index_map = self._rows_sharding(0).addressable_devices_indices_map((batch_size,))
        starts = [index[0].indices(batch_size) for index in index_map.values()]
        first, last = min(start for start, _, _ in starts), max(stop for _, stop, _ in starts)
        if sum(stop - start for start, stop, _ in starts) != last - first:
            raise NabiyaError(f"this process's devices hold rows that are not contiguous ({self.describe()})")
        return slice(first, last)

    def replicate(self, tree: T) -> T:
        """Arrays with the same value in every process -> arrays held whole by every device."""
        if not self.spread:
            return tree
        from jax.sharding import NamedSharding, PartitionSpec

        return self._place(tree, lambda ndim: NamedSharding(self.mesh, PartitionSpec()))

    def split_rows(self, tree: T, axis: int = 0) -> T:
        """Arrays with the same (whole) value in every process -> split by rows (``axis``) over the devices."""
        if not self.spread:
            return tree
        return self._place(tree, lambda ndim: self._rows_sharding(axis, ndim))

    def put_rows(self, tree: T, axis: int = 0) -> T:
        """This process's rows (:meth:`rows`, along ``axis``) of arrays -> the global arrays, split over the devices."""
        if not self.spread:
            return tree
        import jax

        def put(local):
            local = np.asarray(local)
            global_shape = list(local.shape)
            global_shape[axis] = local.shape[axis] * self.device_count // len(self.mesh.local_devices)
            return jax.make_array_from_process_local_data(self._rows_sharding(axis, local.ndim), local,
                                                          tuple(global_shape))  # fmt: skip

        return jax.tree_util.tree_map(put, tree)

    def to_host(self, tree: T) -> T:
        """Numpy copies of arrays, whole in every process (arrays split over processes are gathered: every
        process must call this together)."""
        import jax

        def fetch(leaf):
            if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable and not leaf.is_fully_replicated:
                from jax.experimental import multihost_utils

                return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
            return np.asarray(leaf)

        return jax.tree_util.tree_map(fetch, tree)

    def _rows_sharding(self, axis: int, ndim: int | None = None):
        from jax.sharding import NamedSharding, PartitionSpec

        spec = [None] * max(ndim or axis + 1, axis + 1)
        spec[axis] = DATA_AXIS
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def _place(self, tree, sharding_of):
        import jax

        def place(leaf):
            if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                return leaf  # a random key stays uncommitted: jit puts it where it is needed
            value = np.asarray(leaf)
            return jax.make_array_from_callback(value.shape, sharding_of(value.ndim), lambda index: value[index])

        return jax.tree_util.tree_map(place, tree)

    # --- what the processes agree on and share ---

    def agree(self, compute: Callable[[], Any], *, what: str) -> Any:
        """Every process computes ``compute()`` (JSON-able data); all must get the same. Returns it.

        A :class:`NabiyaError` in any process, or values that differ, become one
        :class:`ClusterError` that every process raises: the message of process 0's error
        (or of the first process that failed), or the first difference, named.
        """
        try:
            outcome = {"value": compute()}
        except NabiyaError as error:
            if self.process_count == 1:
                raise
            outcome = {"error": str(error)}
        if self.process_count == 1:
            return outcome["value"]
        outcomes = self._gather_json(outcome)
        failed = [(index, item["error"]) for index, item in enumerate(outcomes) if "error" in item]
        if failed:
            index, message = failed[0]
            alike = len(failed) == self.process_count and len({text for _, text in failed}) == 1
            raise ClusterError(message if alike else f"process {index} of {self.process_count}: {message}")
        values = [item["value"] for item in outcomes]
        for index, value in enumerate(values[1:], start=1):
            differences = json_differences(values[0], value)
            if differences:
                name, first, other = differences[0]
                more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
                raise ClusterError(f"the processes disagree on {what}: {name} is {first!r} in process 0 but "
                                   f"{other!r} in process {index}{more}; start every process with the same "
                                   "command and corpus")  # fmt: skip
        return values[0]

    def shared(self, compute: Callable[[], T]) -> T:
        """Process 0 computes ``compute()`` (JSON-able data); every process returns it.

        A :class:`NabiyaError` in process 0 is raised in every process (as a :class:`ClusterError`).
        """
        if self.process_count == 1:
            return compute()
        outcome = None
        if self.is_writer:
            try:
                outcome = {"value": compute()}
            except NabiyaError as error:
                outcome = {"error": str(error)}
        outcome = self._broadcast_json(outcome)
        if "error" in outcome:
            raise ClusterError(outcome["error"])
        return outcome["value"]

    def shared_arrays(self, compute: Callable[[], T], like: T) -> T:
        """Process 0 computes a pytree of arrays shaped as ``like``; every process returns it (host arrays there).

        Errors as in :meth:`shared`.
        """
        if self.process_count == 1:
            return compute()
        import jax
        from jax.experimental import multihost_utils

        made: list = []
        self.shared(lambda: made.append(compute()))
        source = made[0] if made else jax.tree_util.tree_map(lambda leaf: np.zeros(np.shape(leaf), leaf.dtype), like)
        return multihost_utils.broadcast_one_to_all(jax.tree_util.tree_map(np.asarray, source))

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set in any process."""
        return bool(flag) if self.process_count == 1 else bool(self._gather_ints([int(bool(flag))])[:, 0].any())

    def total(self, count: int) -> int:
        """The sum of ``count`` over the processes."""
        return int(count) if self.process_count == 1 else int(self._gather_ints([int(count)])[:, 0].sum())

    def preempted(self, block: int) -> bool:
        """Whether a preemption notice (SIGTERM, as schedulers send before they evict) reached any process:
        JAX's preemption sync point, True in every process at the same ``block`` (count blocks from 1, call
        after every block)."""
        if self.process_count == 1:
            return False
        from jax.experimental import multihost_utils

        return bool(multihost_utils.reached_preemption_sync_point(block))

    def on_writer(self, action: Callable[[], Any]) -> None:
        """Run ``action`` (writing files) in process 0 only; its NabiyaError is raised in every process."""
        if self.process_count == 1:
            action()
            return
        self.shared(lambda: (action(), None)[1])

    @contextlib.contextmanager
    def watching(self, resume_command: str = "nabiya train --resume RUN"):
        """Turns the error of a collective whose peer process died into a :class:`LostProcess`."""
        try:
            yield
        except NabiyaError:
            raise
        except (RuntimeError, ValueError) as error:
            if self.process_count == 1 or not _LOST.search(str(error)):
                raise
            raise LostProcess(f"process {self.process_index} of {self.process_count} lost contact with another "
                              f"process of the run, which died or was killed ({_jax_reason(error)}); resume the run "
                              f"from its last checkpoint: {resume_command}") from None  # fmt: skip

    def _gather_ints(self, values: list[int]) -> np.ndarray:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.int32))).reshape(
            self.process_count, len(values))  # fmt: skip

    def _gather_json(self, value) -> list:
        from jax.experimental import multihost_utils

        data = np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8)
        lengths = self._gather_ints([data.size])[:, 0]
        padded = np.zeros(_bucket(int(lengths.max())), np.uint8)
        padded[: data.size] = data
        rows = np.asarray(multihost_utils.process_allgather(padded)).reshape(self.process_count, -1)
        return [json.loads(bytes(row[:length])) for row, length in zip(rows, lengths)]

    def _broadcast_json(self, value) -> Any:
        from jax.experimental import multihost_utils

        data = json.dumps(value).encode() if self.is_writer else b""
        length = int(multihost_utils.broadcast_one_to_all(np.int32(len(data))))
        buffer = np.zeros(_bucket(length), np.uint8)
        if self.is_writer:
            buffer[:length] = np.frombuffer(data, np.uint8)
        return json.loads(bytes(np.asarray(multihost_utils.broadcast_one_to_all(buffer))[:length]))


def _bucket(size: int) -> int:
    """Messages travel padded to a power of two (at least 1 KiB): each size is a compiled program of its own."""
    return max(1024, 1 << max(size - 1, 0).bit_length())


def rows_value_and_grad(loss: Callable, mesh) -> Callable:
    """``jax.value_and_grad(loss, has_aux=True)`` of a batch's mean loss, each device on its own rows, the gradients
    summed across the devices once: one all-reduce per step, inside the compiled step (``jax.shard_map``).

    ``loss(params, static, batch, carry, keys)`` is :func:`nabiya.corpus_train.batch_loss`: the mean over the
    trained positions (``batch["mask"]``) of the rows, and ``(carry, nll_sum, scored_count)``; ``keys`` are one
    per row, split from the step's key exactly as one device splits it, so dropout is the same on any mesh.
    The parameters are replicated, the batch and carry split by rows (axis 0) over ``mesh``'s ``"data"`` axis.
    Each device's mean is weighted by its share of the trained positions, so the result is the whole batch's mean.

    Why not leave the reduction to XLA's SPMD partitioner, as for the rest of the step: in the LSTM's backward
    pass the recurrent weights' gradient is summed over the rows at every time step of the scan, and the
    partitioner puts an all-reduce there, T × layers of them per step (measured when this was written: about
    6× slower per step with two processes on a 2-core CPU).
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec

    replicated, rows = PartitionSpec(), PartitionSpec(DATA_AXIS)
    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:  # JAX before 0.7
        from jax.experimental.shard_map import shard_map

    def value_and_grad(params, static, batch, carry, key):
        keys = None if key is None else jax.random.split(key, batch["inputs"].shape[0])

        def local(params, batch, carry, keys):
            # The weights as this device's own copy: their gradient is this device's alone (no all-reduce
            # where the backward pass uses them), summed below once.
            params = _varying(params, DATA_AXIS)
            (mean, (carry, nll_sum, scored)), grads = jax.value_and_grad(loss, has_aux=True)(
                params, static, batch, carry, keys)  # fmt: skip
            count = jnp.sum(batch["mask"])
            weight = count / jnp.maximum(jax.lax.psum(count, DATA_AXIS), 1)  # this device's share of the positions
            mean, grads = jax.tree_util.tree_map(lambda x: jax.lax.psum(x * weight, DATA_AXIS), (mean, grads))
            return (mean, (carry, jax.lax.psum(nll_sum, DATA_AXIS), jax.lax.psum(scored, DATA_AXIS))), grads

        return shard_map(local, mesh=mesh, in_specs=(replicated, rows, rows, rows),
                         out_specs=((replicated, (rows, replicated, replicated)), replicated))(params, batch, carry, keys)  # fmt: skip

    return value_and_grad


def _varying(tree, axis: str):
    """``tree`` marked as varying over the mesh axis (so that its gradient is not summed over devices)."""
    import jax

    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(tree, axis, to="varying")
    if hasattr(jax.lax, "pvary"):
        return jax.lax.pvary(tree, axis)
    return tree  # JAX before 0.6.1: the gradient of a replicated input is not summed


def fingerprint(value: Any) -> str:
    """A short SHA-256 of JSON data (to compare large data across processes by a few bytes)."""
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _jax_reason(error: Exception) -> str:
    """The gist of a runtime error: its first line without source locations (``[external/gloo/...cc:538]``)."""
    return _first_line(re.sub(r"\[[\w./-]+\.cc:\d+\]\s*", "", str(error)))


def _first_line(text: str, limit: int = 160) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
