"""Progress: a trial's end line names the rung where a pruned trial stopped; the chunk bar is
drawn on a terminal and nowhere else."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from autonat_search.execution.progress import PROGRESS_LOGGER, log_trial_end

BAR_SCRIPT = """
import time
from autonat_search.execution.progress import chunk_progress
with chunk_progress(4, "evaluate") as advance:
    for _ in range(4):
        time.sleep(0.05)
        advance(1)
print("done", flush=True)
"""


def _trial(state: TrialState, value: float | None, fid_per_rung: dict[str, float]):
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        intermediate_values={int(n): fid for n, fid in fid_per_rung.items()},
        user_attrs={"fid_per_rung": fid_per_rung, "images_generated": 40, "seconds": 3.0},
    )


def test_a_pruned_trial_ends_at_the_rung_where_it_stopped(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    logging.getLogger(PROGRESS_LOGGER).propagate = True
    # Optuna gives a pruned trial its last intermediate value as its value.
    pruned = _trial(TrialState.PRUNED, 35.5, {"40": 35.5})
    complete = _trial(TrialState.COMPLETE, 9.25, {"40": 12.0, "80": 9.25})
    log_trial_end(pruned)
    log_trial_end(complete)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        f"trial {pruned.number} PRUNED: at FID@40 = 35.5000 after 3 s",
        f"trial {complete.number} COMPLETE: FID 9.2500 after 3 s",
    ]


def _run_bar(stderr_is_terminal: bool) -> str:
    command = [sys.executable, "-c", BAR_SCRIPT]
    if not stderr_is_terminal:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 wide
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return b"".join(chunks).decode(errors="replace")


def test_the_chunk_bar_is_drawn_on_a_terminal_only():
    on_terminal = _run_bar(stderr_is_terminal=True)
    assert "evaluate" in on_terminal and "4/4" in on_terminal
    assert _run_bar(stderr_is_terminal=False) == ""
