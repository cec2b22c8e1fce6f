"""Running trials, from the bottom layer up:

- ``artifact_images``: a trial's sample grid and schedule plot as PNG bytes.
- ``evaluation``: the samples of an evaluation (common random numbers per chunk);
  ``fingerprint``: the bundle check; ``trial_artifacts``: uploading a trial's artifacts;
  ``heartbeat``: the trial's own heartbeat keeper; ``progress``: the per-trial log lines;
  ``pending_results``: results kept on disk through a database outage; ``ray_session``:
  joining or starting Ray.
- ``objective``: the FID objective over the study's rungs; ``noise_floor``: the study's
  seed-to-seed FID spread, measured once.
- ``trial_loop``: one actor's budgeted trial loop.
- ``actors``: Ray actors and evaluation fan-out.
- ``placement``: node discovery and actor placement.
- ``worker``: the worker, on one node or the whole cluster.

Each module imports only those in layers below it (an import-linter contract)."""

from autonat_search.execution.actors import (
    BundleActor,
    ensure_ray,
    evaluate_on_actors,
    local_actors,
)
from autonat_search.execution.evaluation import (
    SamplePlan,
    evaluate_chunks,
    sample_plan,
    split_evenly,
)
from autonat_search.execution.fingerprint import check_fingerprint, study_bundle
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.placement import RayNode, alive_nodes
from autonat_search.execution.trial_loop import (
    WorkerOptions,
    run_study_trials,
    run_trial_loop,
)
from autonat_search.execution.worker import run_worker, run_worker_on_all_nodes

__all__ = [
    "BundleActor",
    "FidObjective",
    "RayNode",
    "SamplePlan",
    "WorkerOptions",
    "alive_nodes",
    "check_fingerprint",
    "ensure_ray",
    "evaluate_chunks",
    "evaluate_on_actors",
    "local_actors",
    "run_study_trials",
    "run_trial_loop",
    "run_worker",
    "run_worker_on_all_nodes",
    "sample_plan",
    "split_evenly",
    "study_bundle",
]
