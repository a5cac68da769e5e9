"""Files and folders that are never half-written, checked before any work, and safe to read.

Writing:

- :func:`atomic_path` writes a file under a temporary name beside it, then renames it
  into place; :func:`write_bytes` and :func:`write_text` use it.
- :class:`staged_folder` builds a whole output folder (a run, a comparison, a generated
  melody) under a temporary name beside it and swaps it in at once: the old folder is
  renamed aside, the new one renamed in, and the old one deleted. A failure at any point
  leaves the old folder as it was, and no folder mixes old and new files.
- :func:`check_output_file` and :func:`check_output_folder` say *before any work* whether
  an output can be written (a name too long for the file system, a file where a folder is
  wanted or the reverse, an unwritable place, a folder that holds something else). They
  create nothing: an output folder appears only when the work behind it has succeeded.

What counts as "an earlier output": a finished output folder holds a small manifest,
``.nabiya-output.json``, that lists every file nabiya wrote there (names only, so two
identical runs give identical folders). A folder whose every entry is listed is an
earlier output of nabiya and is replaced only when asked (``force=True``, the CLI's
``--force``). A non-empty folder with anything else in it is never replaced, with or
without ``force``: nabiya deletes nothing it did not write.

Leftovers: every temporary name is ``.nabiya-HOST-PID-RANDOM.tmp`` (HOST a hash of the
host name), and a staging folder holds a marker naming its target. A process killed while
writing (SIGKILL, power loss) leaves one behind; the next write into the same folder
removes those of this host whose process is gone, and puts back an old output folder
that had been renamed aside when its replacement never arrived. Nothing else is touched.

Reading: :func:`read_regular_file` refuses what is not a regular file (a FIFO would
block forever, ``/dev/zero`` would never end) and reads at most a given number of bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from nabiya.errors import NabiyaError

OUTPUT_MANIFEST = ".nabiya-output.json"
_STAGING_MARKER = ".nabiya-staging.json"
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_LEFTOVER = re.compile(r"^\.nabiya-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[A-Za-z0-9_]+\.tmp$")
_DEFAULT_NAME_MAX = 255
_DEFAULT_PATH_MAX = 4096


def _temporary_prefix() -> str:
    return f".nabiya-{_HOST}-{os.getpid()}-"


# --- reading -----------------------------------------------------------------------------


def read_regular_file(path: str | os.PathLike, *, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Special files are refused without blocking: a FIFO is opened non-blocking and
    checked before any read, a device or folder is refused by its type.

    Raises:
        NabiyaError: ``"cannot read {what} 'PATH': …"`` when it is missing, not a regular
            file, unreadable, or larger than ``limit``.

    Example:
        >>> read_regular_file("/dev/zero", limit=10)                  # doctest: +SKIP
        Traceback (most recent call last):
        nabiya.errors.NabiyaError: cannot read file '/dev/zero': it is a device, not a regular file
    """
    name = os.fspath(path)

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"cannot read {what} {str(name)!r}: {problem}")

    try:
        descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("it is a folder, not a file") from None
    except (OSError, ValueError) as error:
        raise fail(_reason(error)) from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise fail("it is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise fail(f"it is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise fail(f"it has {info.st_size:,} bytes, more than the limit of {limit:,}")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(descriptor, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as error:
        raise fail(_reason(error)) from None
    finally:
        os.close(descriptor)
    if len(data) > limit:  # the file grew while we read it
        raise fail(f"it has more than the limit of {limit:,} bytes")
    return data


def refuse_special_file(path: str | os.PathLike, *, what: str = "file") -> None:
    """Refuse a FIFO, device or socket by its type alone (opening a FIFO to look would block).

    Missing paths, folders and regular files pass: their readers report those.

    Raises:
        NabiyaError: ``"cannot read {what} 'PATH': it is a named pipe (FIFO), not a regular file"``.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise NabiyaError(f"cannot read {what} {os.fspath(path)!r}: it is {_kind(mode)}, not a regular file")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


# --- checking outputs before any work ----------------------------------------------------


def check_output_file(path: str | os.PathLike, *, what: str = "file") -> Path:
    """Check that ``path`` can be written as a file, before any work; create nothing.

    An existing file there is replaced when the file is written (as ``cp`` does).

    Raises:
        NabiyaError: for a name too long for the file system, a folder at ``path``, a
            file where one of its folders should be, or a place that cannot be written.
    """
    path = Path(path)
    _check_name(path, what)
    if path.is_dir():
        raise NabiyaError(f"cannot write {what} {str(path)!r}: it is a folder")
    _check_writable_parent(path, what)
    return path


def check_output_folder(out: str | os.PathLike, *, force: bool = False, what: str = "output folder") -> Path:
    """Check that ``out`` can become an output folder, before any work; create nothing.

    ``out`` may be missing, an empty folder, or (with ``force``) an earlier output of
    nabiya (see the module docstring). Leftovers of killed writes beside it are cleaned.

    Raises:
        NabiyaError: naming ``out``, for a name too long, a file there, an unwritable
            place, an earlier output without ``force``, or a folder holding other files.
    """
    out = Path(out)
    _check_name(out, what)
    absolute = Path(os.path.abspath(out))
    if absolute == Path(os.path.abspath(os.curdir)) or absolute in Path(os.path.abspath(os.curdir)).parents:
        raise NabiyaError(f"cannot write {what} {str(out)!r}: it is the current folder or holds it; name a new folder")
    if out.exists() and not out.is_dir():
        raise NabiyaError(f"cannot write {what} {str(out)!r}: a file of that name exists")
    _check_writable_parent(out, what)
    if out.is_dir():
        _check_replaceable(out, force=force, what=what)
    return out


def _check_name(path: Path, what: str) -> None:
    text = os.fspath(path)
    if not text or "\0" in text:
        raise NabiyaError(f"cannot write {what} {text!r}: not a valid file name")
    ancestor = _nearest_existing(path)
    name_max = _pathconf(ancestor, "PC_NAME_MAX", _DEFAULT_NAME_MAX)
    path_max = _pathconf(ancestor, "PC_PATH_MAX", _DEFAULT_PATH_MAX)
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise NabiyaError(
                f"cannot write {what} {text!r}: the name {_shorten(part)!r} has {len(os.fsencode(part))} bytes; "
                f"this file system allows at most {name_max}"
            )
    if len(os.fsencode(os.path.abspath(text))) >= path_max:
        raise NabiyaError(f"cannot write {what} {_shorten(text)!r}: the path is longer than this system's {path_max} bytes")


def _check_writable_parent(path: Path, what: str) -> None:
    """The nearest existing folder above ``path`` must be a folder we can create files in."""
    ancestor = _nearest_existing(path.parent if path.parent != Path("") else Path("."))
    if not ancestor.is_dir():
        raise NabiyaError(f"cannot write to folder {str(path.parent)!r}: {str(ancestor)!r} is a file, not a folder")
    try:  # a probe, not os.access: it also sees read-only file systems, ACLs and full disks
        handle, name = tempfile.mkstemp(prefix=_temporary_prefix(), suffix=".tmp", dir=ancestor)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        raise NabiyaError(f"cannot write to folder {str(ancestor)!r}: {_reason(error)}") from None
    clean_leftovers(ancestor)


def _check_replaceable(out: Path, *, force: bool, what: str) -> None:
    entries = _entries(out)
    if not entries:
        return
    listed = _manifest(out)
    foreign = sorted(entry for entry in entries if listed is None or entry not in listed)
    if foreign:
        shown = ", ".join(repr(entry) for entry in foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise NabiyaError(
            f"cannot write {what} {str(out)!r}: the folder is not empty and holds files nabiya did not write "
            f"({shown}); nabiya never deletes them: choose a new or empty folder"
        )
    if not force:
        raise NabiyaError(
            f"{what} {str(out)!r} already holds an earlier output of nabiya: add --force to replace it "
            "(force=True in Python), or choose another folder"
        )


def _entries(folder: Path) -> set[str]:
    """Every file and folder under ``folder`` as a relative POSIX path, nabiya's own markers aside."""
    found = set()
    for root, folders, files in os.walk(folder):
        relative = Path(root).relative_to(folder)
        for name in folders + files:
            if relative == Path(".") and name in (OUTPUT_MANIFEST, _STAGING_MARKER):
                continue
            found.add((relative / name).as_posix())
    return found


def _manifest(folder: Path) -> set[str] | None:
    try:
        data = json.loads((folder / OUTPUT_MANIFEST).read_text(encoding="utf-8"))
        files = data["files"] if isinstance(data, dict) and data.get("written_by") == "nabiya" else None
        return {entry for entry in files if isinstance(entry, str)} if isinstance(files, list) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(path if path.is_dir() else path.parent, name))
    except (OSError, ValueError):
        return default


def _shorten(text: str, keep: int = 40) -> str:
    return text if len(text) <= keep + 20 else f"{text[:keep]}…{text[-20:]}"


def _reason(error: BaseException) -> str:
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).rstrip(".")


# --- writing files -------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any exception (Ctrl-C included) the temporary file is removed, folders created for
    it are removed again, and ``path`` is left as it was.

    Example:
        >>> with atomic_path("out.txt") as tmp:                       # doctest: +SKIP
        ...     tmp.write_text("hello")
    """
    path = Path(path)
    created = _make_parents(path.parent)
    try:
        handle, name = tempfile.mkstemp(prefix=_temporary_prefix(), suffix=".tmp", dir=path.parent)
    except OSError as error:
        _remove_created(created)
        raise NabiyaError(f"cannot write to folder {str(path.parent)!r}: {_reason(error)}") from None
    os.close(handle)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_created(created)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def ensure_directory(directory: str | os.PathLike) -> Path:
    """Create ``directory`` (and parents) and check that files can be written in it.

    Prefer :func:`check_output_folder` before work and :class:`staged_folder` to write:
    this creates the folder at once.

    Raises:
        NabiyaError: when it cannot be created or written, naming it.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=_temporary_prefix(), suffix=".tmp", dir=directory)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        raise NabiyaError(f"cannot write to folder {str(directory)!r}: {_reason(error)}") from None
    return directory


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest last."""
    missing = []
    current = Path(os.path.abspath(folder))
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    if os.path.lexists(current) and not current.is_dir():
        raise NabiyaError(f"cannot write to folder {str(folder)!r}: {str(current)!r} is a file, not a folder")
    created = []
    try:
        for folder_to_make in reversed(missing):
            folder_to_make.mkdir()
            created.append(folder_to_make)
    except OSError as error:
        _remove_created(created)
        raise NabiyaError(f"cannot write to folder {str(folder)!r}: {_reason(error)}") from None
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


# --- writing folders -----------------------------------------------------------------------


class staged_folder:
    """Build a folder under a temporary name beside ``out``, then swap it in at once.

    The folder is checked as :func:`check_output_folder` does (``force`` replaces an
    earlier output of nabiya, never anything else). On success a manifest listing the
    files is added, then: a missing or empty ``out`` is replaced by a rename; an earlier
    output is renamed aside, the new folder renamed in, and the old one deleted. On any
    failure (Ctrl-C included) the staging folder is removed, ``out`` is as it was, and an
    error message naming a file in the staging folder names it under ``out`` instead.

    Example:
        >>> with staged_folder("runs/mine") as staging:                 # doctest: +SKIP
        ...     (staging / "summary.json").write_text("{}")
    """

    def __init__(self, out: str | os.PathLike, *, force: bool = False, what: str = "output folder"):
        self.out = Path(out)
        self.force = force
        self.what = what

    def __enter__(self) -> Path:
        check_output_folder(self.out, force=self.force, what=self.what)
        parent = self.out.parent if self.out.parent != Path("") else Path(".")
        self.created = _make_parents(parent)
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=_temporary_prefix(), suffix=".tmp", dir=parent))
            os.chmod(self.staging, 0o777 & ~_umask())  # mkdtemp makes folders private
            _write_marker(self.staging, self.out.name, role="new")
        except OSError as error:
            _remove_created(self.created)
            raise NabiyaError(f"cannot write {self.what} {str(self.out)!r}: {_reason(error)}") from None
        return self.staging

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            _remove_created(self.created)
            if isinstance(error, NabiyaError) and str(self.staging) in str(error):
                raise NabiyaError(str(error).replace(str(self.staging), str(self.out))) from None
            return
        try:
            entries = sorted(_entries(self.staging))
            manifest = {"written_by": "nabiya", "files": entries}
            (self.staging / OUTPUT_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
            self._swap_in()
            # The marker stays until the folder is in place: a kill before leaves a cleanable leftover.
            (self.out / _STAGING_MARKER).unlink(missing_ok=True)
        except OSError as problem:
            shutil.rmtree(self.staging, ignore_errors=True)
            _remove_created(self.created)
            raise NabiyaError(f"cannot write {self.what} {str(self.out)!r}: {_reason(problem)}") from None

    def _swap_in(self) -> None:
        out = self.out
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if not os.path.lexists(out):
            os.rename(self.staging, out)
            return
        # An earlier output (checked on entry): old aside, new in, old gone. A kill between
        # the two renames leaves the old folder aside with a marker; the next write puts it back.
        _write_marker(out, out.name, role="old")
        aside = Path(tempfile.mkdtemp(prefix=_temporary_prefix(), suffix=".tmp", dir=out.parent))
        aside.rmdir()
        os.rename(out, aside)
        try:
            os.rename(self.staging, out)
        except OSError:
            os.rename(aside, out)
            (out / _STAGING_MARKER).unlink(missing_ok=True)
            raise
        (out / _STAGING_MARKER).unlink(missing_ok=True)
        shutil.rmtree(aside, ignore_errors=True)


def _write_marker(folder: Path, target: str, *, role: str) -> None:
    marker = {"written_by": "nabiya", "target": target, "role": role, "pid": os.getpid()}
    (folder / _STAGING_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


# --- leftovers of killed writes ------------------------------------------------------------


def clean_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders that killed nabiya processes left in ``folder``.

    Only names of nabiya's pattern, made on this host by a process that no longer exists,
    are touched; a staging folder must also hold nabiya's marker (or be empty). An old
    output folder renamed aside whose replacement never arrived is renamed back.

    Returns:
        The leftovers removed or put back.
    """
    folder = Path(folder)
    cleaned = []
    try:
        names = os.listdir(folder)
    except OSError:
        return cleaned
    for name in names:
        match = _LEFTOVER.match(name)
        if not match or match["host"] != _HOST or _process_exists(int(match["pid"])):
            continue
        leftover = folder / name
        try:
            if leftover.is_symlink() or not leftover.is_dir():
                leftover.unlink()
            elif not any(leftover.iterdir()):
                leftover.rmdir()
            else:
                marker = _read_marker(leftover)
                if marker is None:
                    continue
                target = folder / marker["target"]
                if marker["role"] == "old" and not os.path.lexists(target) and _LEFTOVER.match(target.name) is None:
                    (leftover / _STAGING_MARKER).unlink()
                    os.rename(leftover, target)
                else:
                    shutil.rmtree(leftover)
            cleaned.append(leftover)
        except OSError:
            continue
    return cleaned


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / _STAGING_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(marker, dict)
        and marker.get("written_by") == "nabiya"
        and marker.get("role") in ("new", "old")
        and isinstance(marker.get("target"), str)
        and marker["target"] not in ("", ".", "..")
        and "/" not in marker["target"]
        and "\0" not in marker["target"]
    )
    return marker if valid else None


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number we cannot ask about: not provably gone
    return True
