"""A study's progress: trials by state, best FID so far, images generated, throughput."""

from __future__ import annotations

from typing import Any

import optuna

from autonat_search.records import TrialRecord
from autonat_search.reporting.export import ranked_complete_trials
from autonat_search.reporting.noise import describe_noise_floor, noise_floor_verdict
from autonat_search.study import study_config

__all__ = ["format_status", "status_report"]


def status_report(study: optuna.Study) -> dict[str, Any]:
    """The figures of ``autonat-search status`` (also its ``--json`` output)."""
    config = study_config(study)
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name] = by_state.get(t.state.name, 0) + 1
    recorded = [TrialRecord.from_frozen(t) for t in trials]
    images = sum(r.images for r in recorded)
    seconds = sum(r.seconds or 0.0 for r in recorded)
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
    verdict = noise_floor_verdict(study)
    if verdict is not None:
        verdict["spread"] = {str(rung): s for rung, s in verdict["spread"].items()}  # JSON keys
    report["noise_floor"] = verdict
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
    verdict = report.get("noise_floor")
    if verdict is not None:
        verdict = verdict | {"spread": {int(k): v for k, v in verdict["spread"].items()}}
    lines.append(describe_noise_floor(verdict))
    return "\n".join(lines)
