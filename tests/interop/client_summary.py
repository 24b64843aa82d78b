"""What every generated-code client (Go, Java) prints: event lines, then a JSON summary."""

from __future__ import annotations

import json
import re


def check_run_and_watch(stdout: str) -> None:
    """A cited reflection run, then a watched workflow to SUCCEEDED with numbered progress."""
    lines = stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["run"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["run"]["citations"]
    assert all(url.startswith("http") for url in result["run"]["citations"])
    assert len(result["run"]["traceId"]) == 32
    assert result["watched"]["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert result["watched"]["name"] != result["run"]["name"]
    events = [line.split() for line in lines if line.startswith("  ")]
    assert events[0][0] == "SNAPSHOT"
    if len(events) > 1:  # it was still running when the watch began
        assert events[-1][:2] == ["FINISHED", "SUCCEEDED"]
        steps = " ".join(" ".join(e) for e in events)
        assert re.search(r"research SUCCEEDED \(\d+ documents\)", steps)
