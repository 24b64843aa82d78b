"""`make run ENGINE=temporal`: the Temporal dev server and the workers are supervised children
like the services: named in exit reports, restarted in place, their ports checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ponder_devstack.supervisor import Supervisor
from ponder_devstack.temporal import TemporalSide, Workers


def test_a_worker_exit_is_reported_by_name_and_restarted_in_place(tmp_path: Path):
    """A worker that exits is reported as worker-<n> with its code and log; restart() spawns
    a new worker process in the same slot, appending to the same log."""
    side = TemporalSide.for_run(tmp_path / "data", tmp_path / "log", port=17233)
    side.workers = Workers({"PONDER_TEMPORAL_ADDRESS": "127.0.0.1:1"}, tmp_path / "log")
    side.workers.log_dir.mkdir(parents=True)
    side.workers.log_path(0).write_text("worker boom\n")
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    side.workers.processes.append(exited)
    children = side.children()
    assert [c.name for c in children] == ["temporal", "worker-1"]
    assert side.ports() == {"temporal": 17233, "temporal UI": 18233}
    gone = Supervisor(children).exited()
    assert gone is not None
    assert (gone.name, gone.code) == ("worker-1", 3)
    assert "worker boom" in gone.report()
    side.restart("worker-1")
    try:
        assert side.workers.processes[0] is not exited
        assert children[1].process is side.workers.processes[0]  # the child follows the slot
        assert side.workers.log_path(0).read_text().startswith("worker boom")
    finally:
        side.workers.processes[0].kill()
        side.workers.processes[0].wait()
