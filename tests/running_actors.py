"""Finding the actor of a running trial, and stopping it there, for the tests that kill an
actor mid-trial (in the test's process, or in a killer script run with ``tests`` on its path).

A kill sent to an actor that is merely seen running a trial can land after the trial ended,
on a slow machine; an actor stopped (``SIGSTOP``) while its trial is still RUNNING cannot end
it before the kill."""

from __future__ import annotations

import os
import signal
import time

import optuna
import ray
from optuna.trial import FrozenTrial, TrialState
from ray._private.state import actors

from autonat_search import records

__all__ = ["stop_actor_of_running_trial", "wait_for_running_trial"]


def wait_for_running_trial(study: optuna.Study, timeout: float = 240) -> FrozenTrial:
    """A trial some actor is working on (its actor is recorded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if records.TRIAL_ACTOR in trial.user_attrs:
                return trial
        time.sleep(0.05)
    raise AssertionError(f"no trial started within {timeout} s")


def stop_actor_of_running_trial(study: optuna.Study) -> tuple[FrozenTrial, int]:
    """A running trial and the pid of its actor's process, stopped while the trial is still
    RUNNING (the actor may be named in any namespace of the connected Ray cluster)."""
    while True:
        trial = wait_for_running_trial(study)
        name = trial.user_attrs[records.TRIAL_ACTOR]
        [namespace] = [
            a["namespace"] for a in ray.util.list_named_actors(True) if a["name"] == name
        ]
        pid = actors(ray.get_actor(name, namespace=namespace)._ray_actor_id.hex())["Pid"]
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:  # the actor ended with its worker's last trials
            continue
        if study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
            return trial, pid
        os.kill(pid, signal.SIGCONT)  # its trial ended meanwhile: another one
