"""The one exception type nabiya raises for bad input, and how the CLI prints it."""

from __future__ import annotations


class NabiyaError(ValueError):
    """A problem with what the user gave nabiya: a note code, a file, an option.

    The message is one line written for a person: it names the input, the place
    (file, line, note number) and, where it helps, what would be valid. The CLI
    prints it as ``nabiya: error: <message>`` and exits with status 2.
    """
