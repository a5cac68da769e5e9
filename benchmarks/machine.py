"""What machine a benchmark ran on: printed beside every result table."""

from __future__ import annotations

import datetime
import os
import platform


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """``'AMD EPYC, 2 cores, 2026-11-22'``."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {datetime.date.today().isoformat()}"
