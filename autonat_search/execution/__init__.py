"""Running trials: the samples of an evaluation (``evaluation``), the FID objective
(``objective``), one actor's budgeted trial loop (``trial_loop``), the bundle check
(``fingerprint``), Ray actors and evaluation fan-out (``actors``), node discovery and actor
placement (``placement``) and the worker, on one node or the whole cluster (``worker``).
Layered in that order: each module imports only those before it."""

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
