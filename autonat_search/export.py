"""What comes out of a study: the best strategy as reference YAML, a CSV of trials, status."""

from __future__ import annotations

import csv
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autonat_search.errors import StudyError
from autonat_search.objective import (
    DEVICE_ATTR,
    FAIL_ATTR,
    FID_ATTR,
    IMAGES_ATTR,
    SECONDS_ATTR,
    STRATEGY_ATTR,
    WARM_START_ATTR,
)
from autonat_search.study import study_config
from nat_core.strategy import REFERENCE_KEYS, GenerationStrategy


def trial_strategy_of(trial: FrozenTrial) -> GenerationStrategy:
    data = trial.user_attrs.get(STRATEGY_ATTR)
    if data is None:
        raise StudyError(f"trial {trial.number} has no recorded strategy")
    return GenerationStrategy.from_reference_dict(data, source=f"trial {trial.number}")


def ranked_complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: (t.value, t.number))


@dataclass(frozen=True)
class ExportedStrategy:
    trial: int
    strategy: GenerationStrategy
    search_fid: float
    samples: int
    reevaluated_fid: float | None = None
    reevaluation_seed: int | None = None


def write_strategy(study: optuna.Study, chosen: ExportedStrategy, out: Path) -> Path:
    """Reference-format YAML: only the four manual_* keys as data, the rest as comments."""
    comments = [
        "autonat-search best strategy",
        f"study: {study.study_name}",
        f"trial: {chosen.trial}",
        f"FID@{chosen.samples}: {chosen.search_fid:.6g} (search, study sample seed)",
        f"samples: {chosen.samples}",
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
    ]
    if chosen.reevaluated_fid is not None:
        comments.insert(
            4,
            f"FID@{chosen.samples}: {chosen.reevaluated_fid:.6g} "
            f"(re-evaluated, fresh sample seed {chosen.reevaluation_seed})",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    chosen.strategy.save(tmp, comments=comments)
    tmp.replace(out)
    return out


def best_of_study(study: optuna.Study) -> ExportedStrategy:
    ranked = ranked_complete_trials(study)
    if not ranked:
        raise StudyError(f"study {study.study_name!r} has no complete trial yet")
    best = ranked[0]
    return ExportedStrategy(
        trial=best.number,
        strategy=trial_strategy_of(best),
        search_fid=float(best.value),
        samples=study_config(study).full_samples,
    )


CSV_FIXED = [
    "number",
    "state",
    "value",
    "images_generated",
    "seconds",
    "device",
    "warm_start",
    "fail_reason",
]


def export_trials_csv(study: optuna.Study, out: Path) -> int:
    """Every trial: state, strategy (reference keys, JSON lists), FID per rung, images, seconds."""
    rungs = [str(n) for n in study_config(study).fidelity.rungs]
    header = CSV_FIXED + [f"fid@{n}" for n in rungs] + list(REFERENCE_KEYS.values())
    trials = study.get_trials(deepcopy=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in trials:
            attrs = t.user_attrs
            fids = attrs.get(FID_ATTR, {})
            strategy = attrs.get(STRATEGY_ATTR, {})
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    "" if t.value is None else t.value,
                    attrs.get(IMAGES_ATTR, 0),
                    attrs.get(SECONDS_ATTR, ""),
                    attrs.get(DEVICE_ATTR, ""),
                    attrs.get(WARM_START_ATTR, ""),
                    attrs.get(FAIL_ATTR, ""),
                ]
                + [fids.get(n, "") for n in rungs]
                + [
                    json.dumps(strategy.get(k)) if k in strategy else ""
                    for k in REFERENCE_KEYS.values()
                ]
            )
    return len(trials)


def status_report(study: optuna.Study) -> dict[str, Any]:
    config = study_config(study)
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name] = by_state.get(t.state.name, 0) + 1
    images = sum(int(t.user_attrs.get(IMAGES_ATTR, 0)) for t in trials)
    seconds = sum(float(t.user_attrs.get(SECONDS_ATTR, 0.0)) for t in trials)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    finished = by_state.get("COMPLETE", 0) + by_state.get("PRUNED", 0)
    report: dict[str, Any] = {
        "study": study.study_name,
        "budget": config.n_trials,
        "finished": finished,
        "states": by_state,
        "images_generated": images,
        "images_per_second_wall": images / wall if wall > 0 else 0.0,
        "images_per_second_device": images / seconds if seconds > 0 else 0.0,
        "samples": config.full_samples,
    }
    ranked = ranked_complete_trials(study)
    if ranked:
        report["best"] = {"trial": ranked[0].number, "fid": ranked[0].value}
    return report


def format_status(report: dict[str, Any]) -> str:
    states = ", ".join(f"{k} {v}" for k, v in sorted(report["states"].items())) or "no trials"
    lines = [
        f"study {report['study']}: {report['finished']} of {report['budget']} trials finished "
        f"({states})",
        f"images generated: {report['images_generated']}, throughput "
        f"{report['images_per_second_wall']:.1f} images/s (wall), "
        f"{report['images_per_second_device']:.1f} images/s per worker",
    ]
    best = report.get("best")
    if best:
        lines.append(f"best: FID@{report['samples']} = {best['fid']:.4f} (trial {best['trial']})")
    else:
        lines.append("best: none yet (no complete trial)")
    return "\n".join(lines)
