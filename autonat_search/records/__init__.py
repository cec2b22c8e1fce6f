"""THE study and trial record: every user attribute a study or trial carries, its type, and
how it is written and read back. Every writer and reader goes through this module.

Study attributes (written by ``start-study``, except ``reevaluations``):

========================  ===================================================================
``config``                dict: the study config's canonical form (``StudyConfig.to_dict``)
``n_trials``              int: the budget (finished trials); may only be raised
``bundle_fingerprint``    dict: the bundle file's content and each file's size and sha256
``bundle_path``           str: the bundle file the study was created with
``warm_start_notes``      list[str]: how each warm start was enqueued, in words
``ready``                 bool: set last, once the study is fully set up
``reevaluations``         dict[str(trial number), dict[str(seed), float]]: fresh-seed FIDs
``artifact_store``        str: where trials upload artifacts (absolute folder or s3:// URL);
                          absent: no artifacts
``noise_floor``           dict: the first warm start's FID per rung on a few sample seeds
                          (``NoiseFloor``), measured once by the first worker
``noise_floor_claim``     float: when a worker began measuring it (seconds since the epoch)
========================  ===================================================================

The study's metric name (``FID@<top rung>``) and its note (optuna-dashboard) are written by
``notes``.

Trial attributes (written by the objective; ``warm_start`` and an exact ``strategy`` are
given to an enqueued warm start):

========================  ===================================================================
``strategy``              dict: the strategy in the reference's format (``manual_*`` lists)
``fid_per_rung``          dict[str(sample count), float]: FID at each rung reached
``images_generated``      int: images generated so far (the last rung reached)
``seconds``               float: seconds spent on the evaluation so far
``device``                str: the device the trial ran on
``warm_start``            str: the warm start's label (absent for sampled trials)
``fail_reason``           str: why the trial failed (at most 500 characters)
``actor``                 str: the worker actor running it (its trials are failed if it dies)
``artifact_seconds``      float: seconds spent making and uploading the trial's artifacts
``recorded_from_trial``   int: a re-run given the result its failed original computed (a
                          result kept through a database outage: ``pending_results``)
``fd_update``             int: the finite-difference search's update k of this evaluation
``fd_coordinate``         int: -1 for the update's centre x_k, else the number it probes
                          (``samplers.finite_difference``; both absent outside that search)
``mask_ratio_<t>``, ...   float: the strategy flat, one attribute per step (``step_attrs``):
                          ``mask_ratio_<t>`` and ``remask_temp_<t>`` for t = 1..T-1,
                          ``sample_temp_<t>`` and ``cfg_<t>`` for t = 1..T (zero-padded to
                          the width of T), so that a dashboard can sort and plot them
========================  ===================================================================

JSON keys are strings, so sample counts and seeds are stored as ``str(int)`` and read back
as ints.

A trial's attributes written together (its strategy, a rung's progress) reach the storage in
one transaction where the storage can group writes (``grouped_writes``).

Everything is imported from here; ``names`` holds the attribute names, ``study`` and
``trial`` the readers and writers of each half.
"""

from autonat_search.records.names import (
    STEP_ATTR_PREFIXES,
    STUDY_ARTIFACT_STORE,
    STUDY_BUDGET,
    STUDY_BUNDLE_PATH,
    STUDY_CONFIG,
    STUDY_FINGERPRINT,
    STUDY_NOISE_FLOOR,
    STUDY_NOISE_FLOOR_CLAIM,
    STUDY_READY,
    STUDY_REEVALUATIONS,
    STUDY_WARM_START_NOTES,
    TRIAL_ACTOR,
    TRIAL_ARTIFACT_SECONDS,
    TRIAL_DEVICE,
    TRIAL_FAIL_REASON,
    TRIAL_FD_COORDINATE,
    TRIAL_FD_UPDATE,
    TRIAL_FID_PER_RUNG,
    TRIAL_IMAGES,
    TRIAL_RECORDED_FROM,
    TRIAL_SECONDS,
    TRIAL_STRATEGY,
    TRIAL_WARM_START,
)
from autonat_search.records.study import (
    NoiseFloor,
    StudySetup,
    add_reevaluation,
    is_ready,
    mark_ready,
    read_artifact_store,
    read_budget,
    read_bundle_path,
    read_config_dict,
    read_fingerprint,
    read_noise_floor,
    read_noise_floor_claim,
    read_reevaluations,
    read_warm_start_notes,
    write_artifact_store,
    write_budget,
    write_noise_floor,
    write_noise_floor_claim,
    write_study_setup,
    write_warm_start_notes,
)
from autonat_search.records.trial import (
    TrialRecord,
    backing_storage,
    enqueued_trial_attrs,
    grouped_writes,
    read_strategy,
    require_strategy,
    require_value,
    rerun_user_attrs,
    step_attrs,
    write_actor,
    write_artifact_seconds,
    write_device,
    write_fail_reason,
    write_rung,
    write_strategy,
)

__all__ = [
    "STEP_ATTR_PREFIXES",
    "STUDY_ARTIFACT_STORE",
    "STUDY_BUDGET",
    "STUDY_BUNDLE_PATH",
    "STUDY_CONFIG",
    "STUDY_FINGERPRINT",
    "STUDY_READY",
    "STUDY_NOISE_FLOOR",
    "STUDY_NOISE_FLOOR_CLAIM",
    "STUDY_REEVALUATIONS",
    "STUDY_WARM_START_NOTES",
    "TRIAL_ACTOR",
    "TRIAL_ARTIFACT_SECONDS",
    "TRIAL_DEVICE",
    "TRIAL_FAIL_REASON",
    "TRIAL_FD_COORDINATE",
    "TRIAL_FD_UPDATE",
    "TRIAL_FID_PER_RUNG",
    "TRIAL_IMAGES",
    "TRIAL_RECORDED_FROM",
    "TRIAL_SECONDS",
    "TRIAL_STRATEGY",
    "TRIAL_WARM_START",
    "NoiseFloor",
    "StudySetup",
    "TrialRecord",
    "add_reevaluation",
    "backing_storage",
    "enqueued_trial_attrs",
    "grouped_writes",
    "is_ready",
    "mark_ready",
    "read_artifact_store",
    "read_budget",
    "read_bundle_path",
    "read_noise_floor",
    "read_noise_floor_claim",
    "read_config_dict",
    "read_fingerprint",
    "read_reevaluations",
    "read_strategy",
    "read_warm_start_notes",
    "rerun_user_attrs",
    "require_strategy",
    "require_value",
    "step_attrs",
    "write_actor",
    "write_artifact_seconds",
    "write_artifact_store",
    "write_budget",
    "write_device",
    "write_fail_reason",
    "write_noise_floor",
    "write_noise_floor_claim",
    "write_rung",
    "write_study_setup",
    "write_strategy",
    "write_warm_start_notes",
]
