"""autonat-search: generation-strategy search for masked image transformers, as Optuna
studies run by Ray workers. A map of the package, from the bottom layer up:

- ``errors``: the one exception hierarchy.
- ``records``: THE study and trial record (every user attribute, written and read back).
- ``config``: study files parsed into a validated ``StudyConfig`` (``nat_core.schema``).
- ``study_files``: the files a study file names, checked before any work.
- ``spaces``: per-step spaces beside ``space``'s stick-breaking one (``raw``: the numbers
  as they are, which the finite-difference search moves; ``centered``: each number in a
  window around the reference's initial schedule).
- ``space``: search spaces (an Optuna trial <-> a ``GenerationStrategy``), built from the
  study config.
- ``samplers``: Optuna samplers and pruners built from the config.
- ``storage``: Optuna storage on PostgreSQL or SQLite (``rdb``) that waits out outages
  (``resilient``) and writes a trial's grouped writes in one transaction (``trial_writes``),
  the budget lock (``lock``) and artifact stores (``artifacts``).
- ``notes``: what optuna-dashboard shows: the metric name, the study note, trial notes.
- ``study``: creating a study from a config and reading back its config.
- ``execution``: common-random-number evaluation, the FID objective, the budgeted trial
  loop, the bundle check, Ray actors and the worker.
- ``reporting``: the best strategy (optionally re-evaluated on fresh samples), trials as
  CSV, the study's status.
- ``demo``: the embedded default job.
- ``cli``: the ``autonat-search`` command (``cli.run``).

The subpackages are imported on use (``import autonat_search`` alone pulls in nothing).
"""

__all__ = [
    "cli",
    "config",
    "demo",
    "errors",
    "execution",
    "notes",
    "records",
    "reporting",
    "samplers",
    "space",
    "spaces",
    "storage",
    "study",
    "study_files",
]
