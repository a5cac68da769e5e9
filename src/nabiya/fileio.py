"""Writing files so that a failure never leaves a half-written one: temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from nabiya.errors import NabiyaError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_path("out.txt") as tmp:                       # doctest: +SKIP
        ...     tmp.write_text("hello")
    """
    path = Path(path)
    ensure_directory(path.parent)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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

    Raises:
        NabiyaError: when it cannot be created or written, naming it.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".nabiya-write-check-", dir=directory)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        reason = error.strerror or str(error)
        raise NabiyaError(f"cannot write to folder {str(directory)!r}: {reason}") from None
    return directory


class staged_folder:
    """Build a folder under a temporary name beside ``out``, then move it into place.

    If ``out`` does not exist or is empty, the staging folder is renamed to it; otherwise
    each file is moved in with an atomic rename, replacing files of the same name.
    On failure the staging folder is removed and ``out`` is untouched.
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)

    def __enter__(self) -> Path:
        parent = ensure_directory(self.out.parent if self.out.parent != Path("") else Path("."))
        if self.out.exists() and not self.out.is_dir():
            raise NabiyaError(f"cannot write run folder {str(self.out)!r}: a file of that name exists")
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=parent))
        os.chmod(self.staging, 0o777 & ~_umask())  # mkdtemp makes folders private
        return self.staging

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        try:
            if self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()
            if not self.out.exists():
                os.rename(self.staging, self.out)
                return
            for item in self.staging.iterdir():
                target = self.out / item.name
                if target.is_dir() and item.is_dir():
                    shutil.rmtree(target)
                os.replace(item, target)
            shutil.rmtree(self.staging, ignore_errors=True)
        except OSError as problem:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise NabiyaError(f"cannot write run folder {str(self.out)!r}: {problem.strerror or problem}") from None
