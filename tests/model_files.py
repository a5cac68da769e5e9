"""Edited copies of a saved model, for tests of the loader: what a person with an editor could make.

``rewrite_model`` re-signs by default (recomputes both checksums as the format documents
them), so what is tested is the header's schema, not the checksum; ``sign=False`` leaves
the checksums as they were, so the checksum must catch the edit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import safetensors
import safetensors.numpy


def read_model(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a safetensors file."""
    with safetensors.safe_open(str(path), framework="numpy") as file:
        metadata = dict(file.metadata() or {})
    return metadata, dict(safetensors.numpy.load_file(str(path)))


def weights_digest(tensors: dict) -> str:
    """The documented SHA-256 of the tensors: name, dtype, shape and little-endian bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}\0{little.dtype.str}\0{list(array.shape)}\0".encode())
        digest.update(np.ascontiguousarray(little).tobytes())
    return digest.hexdigest()


def header_digest(version: str, text: str) -> str:
    """The documented SHA-256 of the header: the format, the version and the document's text."""
    return hashlib.sha256(f"nabiya-model\0{version}\0".encode() + text.encode("utf-8")).hexdigest()


def rewrite_model(
    source: Path,
    target: Path,
    *,
    document: Callable[[dict], None] | None = None,
    text: Callable[[str], str] | None = None,
    metadata: Callable[[dict], dict] | None = None,
    tensors: Callable[[dict], dict] | None = None,
    sign: bool = True,
) -> Path:
    """Copy a model file with its document (in place, as a dict), its document's text, its
    metadata or its tensors changed; then re-sign it unless ``sign`` is False."""
    header, arrays = read_model(source)
    if tensors is not None:
        arrays = tensors(arrays)
    body = header.get("nabiya", "{}")
    if document is not None:
        data = json.loads(body)
        if sign:
            data["weights_sha256"] = weights_digest(arrays)
        document(data)
        body = json.dumps(data, ensure_ascii=False)
    elif sign and tensors is not None:
        data = json.loads(body)
        data["weights_sha256"] = weights_digest(arrays)
        body = json.dumps(data, ensure_ascii=False)
    if text is not None:
        body = text(body)
    header = {**header, "nabiya": body}
    if sign:
        header["sha256"] = header_digest(header.get("format_version", ""), body)
    if metadata is not None:
        header = metadata(header)
    safetensors.numpy.save_file(arrays, str(target), metadata=header)
    return target
