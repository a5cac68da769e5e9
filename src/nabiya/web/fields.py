"""The fields of a request's JSON body (or query), read as the playground's endpoints need them.

Each reader raises :class:`~nabiya.errors.NabiyaError` with a message naming the field, which the
app answers as a one-line 400, like the CLI's bad-input line.

Example:
    >>> whole({"seed": "3"}, "seed", 0), optional_text({"tune": ""}, "tune")
    (3, None)
"""

from __future__ import annotations

from nabiya.errors import NabiyaError


def text(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise NabiyaError(f"{name} must be text")
    return value


def optional_text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return text(body, name)


def whole(body: dict, name: str, default: int | None) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return default
    return number(body, name, int)


def number(body: dict, name: str, kind: type) -> int | float:
    value = body.get(name)
    wanted = "a whole number" if kind is int else "a number"
    if isinstance(value, str):
        try:
            value = kind(value.strip())
        except ValueError:
            raise NabiyaError(f"{name} must be {wanted}, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise NabiyaError(f"{name} must be {wanted}, not {value!r}")
    return kind(value)
