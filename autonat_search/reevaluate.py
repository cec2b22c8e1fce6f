"""Re-evaluating a study's best trials on a fresh sample seed at the full sample count.

The search's FID of its best trial is optimistically biased (it is the minimum of many noisy
figures on one set of samples); re-evaluating the top K on new samples picks the strategy
to export on an unbiased figure. Results are kept in the study's ``reevaluations``.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from autonat_search.errors import ConfigError, StudyError
from autonat_search.export import ExportedStrategy, ranked_complete_trials, trial_strategy_of
from autonat_search.objective import sample_plan
from autonat_search.study import FINGERPRINT_ATTR, bundle_path, study_config
from autonat_search.worker import check_fingerprint, ensure_ray, evaluate_on_actors, local_actors
from nat_core.bundle import read_bundle
from nat_core.fid import frechet_distance, load_reference_stats

REEVALUATIONS_ATTR = "reevaluations"


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
    path = bundle_path(study)
    check_fingerprint(path, study.user_attrs[FINGERPRINT_ATTR])
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
            stats = evaluate_on_actors(actors, trial_strategy_of(trial), n, plan)
            results.append((frechet_distance(stats.mean(), stats.covariance(), mu, sigma), trial))
    stored = dict(study.user_attrs.get(REEVALUATIONS_ATTR, {}))
    rows = []
    for fid, trial in results:
        stored.setdefault(str(trial.number), {})[str(seed)] = fid
        rows.append(
            f"trial {trial.number}: {search_figure(trial)}, FID@{n} {fid:.4f} re-evaluated "
            f"(seed {seed})"
        )
    study.set_user_attr(REEVALUATIONS_ATTR, stored)
    fid, best = min(
        (r for r in results if r[1].number in candidates), key=lambda r: (r[0], r[1].number)
    )
    return (
        ExportedStrategy(
            trial=best.number,
            strategy=trial_strategy_of(best),
            search_fid=float(best.value),
            samples=n,
            reevaluated_fid=fid,
            reevaluation_seed=seed,
        ),
        rows,
        {trial.number: value for value, trial in results},
    )
