"""What comes out of a study: the best strategy as reference YAML, and a CSV of its trials."""

from __future__ import annotations

import csv
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from autonat_search.errors import StudyError
from autonat_search.records import TrialRecord, require_strategy, require_value
from autonat_search.reporting.noise import describe_noise_floor, noise_floor_verdict
from autonat_search.study import study_config
from nat_core.strategy import REFERENCE_KEYS, GenerationStrategy

__all__ = [
    "ExportedStrategy",
    "best_of_study",
    "export_trials_csv",
    "ranked_complete_trials",
    "write_strategy_file",
]


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


def write_strategy_file(study: optuna.Study, chosen: ExportedStrategy, out: Path) -> Path:
    """Reference-format YAML: only the four manual_* keys as data, the rest as comments."""
    comments = [
        "autonat-search best strategy",
        f"study: {study.study_name}",
        f"trial: {chosen.trial}",
        f"FID@{chosen.samples}: {chosen.search_fid:.6g} (search, study sample seed)",
        f"samples: {chosen.samples}",
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
    ]
    comments.append(describe_noise_floor(noise_floor_verdict(study)))
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
        strategy=require_strategy(best),
        search_fid=require_value(best),
        samples=study_config(study).full_samples,
    )


_CSV_FIXED = [
    "number",
    "state",
    "value",
    "images_generated",
    "seconds",
    "device",
    "warm_start",
    "fail_reason",
]


_OPTUNA_COLUMNS = ("number", "datetime_start", "datetime_complete", "duration", "params")


def _optuna_columns(study: optuna.Study) -> tuple[list[str], dict[int, list[object]]]:
    """Optuna's ``trials_dataframe`` columns (datetimes, duration, ``params_*``) by number."""
    frame = study.trials_dataframe(attrs=_OPTUNA_COLUMNS)
    if frame.empty:
        return [], {}
    columns = [c for c in frame.columns if c != "number"]
    rows = {
        int(number): [_blank_if_none(None if _missing(v) else v) for v in values]
        for number, *values in frame[["number", *columns]].itertuples(index=False)
    }
    return columns, rows


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value) == "NaT"


def export_trials_csv(study: optuna.Study, out: Path) -> int:
    """Every trial: state, strategy (reference keys, JSON lists), FID per rung, images, seconds;
    then Optuna's own columns (``trials_dataframe``: datetimes, duration, ``params_*``)."""
    rungs = list(study_config(study).fidelity.rungs)
    optuna_header, optuna_rows = _optuna_columns(study)
    header = (
        _CSV_FIXED + [f"fid@{n}" for n in rungs] + list(REFERENCE_KEYS.values()) + optuna_header
    )
    trials = [TrialRecord.from_frozen(t) for t in study.get_trials(deepcopy=False)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in trials:
            strategy = t.strategy or {}
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    _blank_if_none(t.value),
                    t.images,
                    _blank_if_none(t.seconds),
                    _blank_if_none(t.device),
                    _blank_if_none(t.warm_start),
                    _blank_if_none(t.fail_reason),
                ]
                + [_blank_if_none(t.fid_per_rung.get(n)) for n in rungs]
                + [
                    json.dumps(strategy.get(k)) if k in strategy else ""
                    for k in REFERENCE_KEYS.values()
                ]
                + optuna_rows.get(t.number, [""] * len(optuna_header))
            )
    return len(trials)


def _blank_if_none(value: object) -> object:
    return "" if value is None else value
