"""Whether the winner's lead over the warm start exceeds the study's noise floor."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.study import study_config

__all__ = ["describe_noise_floor", "noise_floor_verdict"]


def noise_floor_verdict(study: optuna.Study) -> dict[str, Any] | None:
    """The noise floor per rung and, once both finished, the best trial's lead over the warm
    start at the top rung against the spread there; None before it is measured."""
    floor = records.read_noise_floor(study)
    if floor is None:
        return None
    top = study_config(study).full_samples
    verdict: dict[str, Any] = {
        "warm_start": floor.warm_start,
        "seeds": len(floor.seeds),
        "spread": floor.spread,
        "samples": top,
    }
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    warm = [
        t for t in complete if records.TrialRecord.from_frozen(t).warm_start == floor.warm_start
    ]
    if complete and warm and top in floor.spread:
        best = min(complete, key=lambda t: (t.value, t.number))
        lead = float(warm[0].value) - float(best.value)  # type: ignore[arg-type]
        verdict |= {
            "best_trial": best.number,
            "lead": lead,
            "beyond_noise": lead > floor.spread[top],
        }
    return verdict


def describe_noise_floor(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "noise floor: not measured yet"
    spreads = ", ".join(f"FID@{rung} {s:.4f}" for rung, s in sorted(verdict["spread"].items()))
    line = (
        f"noise floor ({verdict['warm_start']} on {verdict['seeds']} sample seeds, "
        f"largest minus smallest): {spreads}"
    )
    if "lead" not in verdict:
        return line + "; the warm start has no complete trial yet"
    where = "beyond" if verdict["beyond_noise"] else "within"
    return (
        f"{line}; the best (trial {verdict['best_trial']}) leads {verdict['warm_start']} by "
        f"{verdict['lead']:.4f} at FID@{verdict['samples']}: {where} the noise"
    )
