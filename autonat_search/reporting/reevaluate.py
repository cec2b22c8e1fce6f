"""Re-evaluating a study's best trials on a fresh sample seed at the full sample count.

The search's FID of its best trial is optimistically biased (it is the minimum of many noisy
figures on one set of samples); re-evaluating the top K on new samples picks the strategy
to export on an unbiased figure. Results are kept in the study's record (``reevaluations``).
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from autonat_search import records
from autonat_search.errors import ConfigError, StudyError
from autonat_search.reporting.export import ExportedStrategy, ranked_complete_trials
from autonat_search.study import study_config
from nat_core.bundle_file import read_bundle

__all__ = ["reevaluate_best", "search_figure"]


def search_figure(trial: optuna.trial.FrozenTrial) -> str:
    """What the search measured for a trial, in words."""
    if not trial.intermediate_values:
        return "not measured in the search"
    step = max(trial.intermediate_values)
    verb = "pruned at" if trial.state == optuna.trial.TrialState.PRUNED else "search seed:"
    return f"{verb} FID@{step} {trial.intermediate_values[step]:.4f}"


def reevaluate_best(
    study: optuna.Study,
    k: int,
    *,
    seed: int | None = None,
    ray_address: str | None = None,
    cpu_actors: int = 1,
    also: Sequence[optuna.trial.FrozenTrial] = (),
) -> tuple[ExportedStrategy, list[str], dict[int, float]]:
    """Re-evaluate the ``k`` best (and the trials ``also``, for comparison) on ``seed``.

    Returns the best of the ``k`` on the fresh samples, a line per trial, and every fresh
    FID by trial number.
    """
    # Imported here: ``status`` and the exports read a study without torch or Ray.
    from autonat_search.execution.actors import ensure_ray, evaluate_on_actors, local_actors
    from autonat_search.execution.evaluation import sample_plan
    from autonat_search.execution.fingerprint import study_bundle
    from autonat_search.execution.progress import chunk_progress
    from nat_core.fid import fid_from_stats, load_reference_stats

    config = study_config(study)
    ranked = ranked_complete_trials(study)[:k]
    if not ranked:
        raise StudyError(f"study {study.study_name!r} has no complete trial yet")
    candidates = {t.number for t in ranked}
    ranked += [t for t in also if t.number not in candidates]
    seed = config.samples.seed + 1 if seed is None else seed
    if seed == config.samples.seed:
        raise ConfigError(f"--seed {seed} is the study's own sample seed; pick a fresh one")
    plan = sample_plan(config, seed=seed)
    path = study_bundle(study)
    mu, sigma = load_reference_stats(read_bundle(path).reference_stats)
    n = config.full_samples
    ensure_ray(ray_address)
    results: list[tuple[float, optuna.trial.FrozenTrial]] = []
    with local_actors(
        path,
        device_kind=config.device.kind,
        cpu_actors=cpu_actors,
    ) as actors:
        for trial in ranked:
            strategy = records.require_strategy(trial)
            with chunk_progress(len(plan.chunks_between(0, n)), f"trial {trial.number}") as bar:
                stats = evaluate_on_actors(actors, strategy, n, plan, progress=bar)
            results.append((fid_from_stats(stats, mu, sigma), trial))
    records.add_reevaluation(study, {trial.number: fid for fid, trial in results}, seed)
    rows = [
        f"trial {trial.number}: {search_figure(trial)}, FID@{n} {fid:.4f} re-evaluated "
        f"(seed {seed})"
        for fid, trial in results
    ]
    fid, best = min(
        (r for r in results if r[1].number in candidates), key=lambda r: (r[0], r[1].number)
    )
    return (
        ExportedStrategy(
            trial=best.number,
            strategy=records.require_strategy(best),
            search_fid=records.require_value(best),
            samples=n,
            reevaluated_fid=fid,
            reevaluation_seed=seed,
        ),
        rows,
        {trial.number: value for value, trial in results},
    )
