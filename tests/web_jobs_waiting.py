"""Waiting for a playground job through the HTTP API, for the server tests."""

from __future__ import annotations

import time


def wait_for_job(client, job_id, seconds=180):
    """The job's state once it is done, failed or cancelled (an AssertionError after ``seconds``)."""
    deadline = time.monotonic() + seconds
    state = None
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["status"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {state}")
