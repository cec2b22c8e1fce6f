"""What optuna-dashboard shows about a study and its trials: the metric name ``FID@<top
rung>``, a study note and one note per trial (markdown, stored where optuna-dashboard's
``save_note`` stores it; a trial's note in one transaction where the storage can).

The note bodies are built from the study's config and a trial's record (``records``).
Intermediate values are FID@n reported at step n, the sample count, so a dashboard's
intermediate-value plot puts each rung at its own x.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna_dashboard import save_note
from optuna_dashboard._note import note_str_key_prefix, note_ver_key, split_body

from autonat_search import records
from autonat_search.config import StudyConfig
from nat_core.strategy import GenerationStrategy

__all__ = [
    "metric_name",
    "strategy_table",
    "study_note",
    "trial_note",
    "write_study_presentation",
    "write_trial_note",
]


def metric_name(config: StudyConfig) -> str:
    return f"FID@{config.full_samples}"


def _ranges(config: StudyConfig) -> str:
    ranges = ", ".join(f"{k} [{lo:g}, {hi:g}]" for k, (lo, hi) in config.space.ranges.items())
    if config.space.kind == "parametric":
        ranges += f"; mask families {', '.join(config.space.mask_families)}"
    return ranges


def study_note(
    config: StudyConfig,
    *,
    warm_start_notes: Sequence[str] = (),
    artifact_store: str | None = None,
    noise_floor: records.NoiseFloor | None = None,
    extra_lines: Sequence[str] = (),
) -> str:
    """The study note: what is searched, how, with which budget, and how to read the plots."""
    fidelity = config.fidelity
    pruner = fidelity.pruner
    if pruner == "successive-halving":
        pruner += f", reduction factor {fidelity.reduction_factor}"
    rows = [
        ("bundle", f"`{config.bundle}`"),
        ("steps", str(config.steps)),
        ("space", f"{config.space.kind}: {_ranges(config)}"),
        ("sampler", f"{config.sampler.name}, seed {config.sampler.seed}"),
        ("rungs", f"{', '.join(str(n) for n in fidelity.rungs)} samples ({pruner})"),
        ("budget", f"{config.n_trials} finished (complete + pruned) trials"),
        (
            "samples",
            f"seed {config.samples.seed}, chunk {config.samples.chunk}, "
            f"labels {config.samples.labels}",
        ),
        ("device", f"{config.device.kind}, {config.device.precision}"),
        ("warm starts", "; ".join(warm_start_notes) or ", ".join(config.warm_start) or "none"),
        ("artifacts", f"`{artifact_store}`" if artifact_store else "none"),
        ("noise floor", _noise_floor(noise_floor)),
    ]
    lines = [
        f"## {config.name}: generation-strategy search, objective {metric_name(config)}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows),
        "",
        *([*extra_lines, ""] if extra_lines else []),
        "- **Intermediate values** are FID@n reported at **step n = the sample count** "
        f"(steps {', '.join(str(n) for n in fidelity.rungs)}). A pruned trial stops at a "
        "lower rung, and Optuna gives it the FID of that rung as its value: compare values "
        "at the same step, and turn off *Include PRUNED trials* in the History plot to see "
        f"only {metric_name(config)}.",
        "- **The real per-step strategy** is in the trial user attributes `mask_ratio_<t>`, "
        "`remask_temp_<t>`, `sample_temp_<t>`, `cfg_<t>` (sortable in the trials table); the "
        "parameters are the search space's coordinates (e.g. stick-breaking fractions).",
        "- **Artifacts** of each finished or pruned trial: `sample_grid.png` (the same labels "
        "and noise for every trial) and `schedules.png` (its four schedules against the step).",
    ]
    return "\n".join(lines)


def _noise_floor(floor: records.NoiseFloor | None) -> str:
    if floor is None:
        return "not measured yet (the first worker measures it once)"
    spreads = ", ".join(f"FID@{rung} {spread:.4f}" for rung, spread in sorted(floor.spread.items()))
    return (
        f"{floor.warm_start} on {len(floor.seeds)} sample seeds, largest minus smallest: {spreads}"
    )


def strategy_table(strategy: GenerationStrategy) -> list[str]:
    """The strategy as a markdown table, one row per step (the mask ratio after the step)."""
    steps = len(strategy.sample_temps)
    lines = [
        "| step | mask ratio | re-mask temp | sample temp | cfg |",
        "|---:|---:|---:|---:|---:|",
    ]
    for t in range(steps):
        last = t == steps - 1
        ratio = "0 (all decided)" if last else f"{strategy.mask_ratios[t]:.4f}"
        remask = "–" if last else f"{strategy.remask_temps[t]:.4f}"
        lines.append(
            f"| {t + 1} | {ratio} | {remask} | {strategy.sample_temps[t]:.4f} | "
            f"{strategy.cfg_scales[t]:.4f} |"
        )
    return lines


def trial_note(
    record: records.TrialRecord,
    strategy: GenerationStrategy,
    *,
    outcome: str,
    grid_path: str | None = None,
    grid_caption: str = "",
) -> str:
    """A trial's note: its outcome, FID per rung, the strategy per step, and its sample grid
    (``grid_path``: the dashboard URL path of the uploaded grid)."""
    lines = [f"### Trial {record.number}: {outcome}", ""]
    if record.warm_start:
        lines += [f"Warm start `{record.warm_start}`.", ""]
    if record.fid_per_rung:
        lines += [
            "| samples | " + " | ".join(str(n) for n in record.fid_per_rung) + " |",
            "|---|" + "---:|" * len(record.fid_per_rung),
            "| FID | " + " | ".join(f"{f:.4f}" for f in record.fid_per_rung.values()) + " |",
            "",
        ]
    seconds = "" if record.seconds is None else f" in {record.seconds:.1f} s"
    lines += [f"{record.images} images{seconds} on {record.device or 'an unknown device'}.", ""]
    lines += ["**Strategy**", "", *strategy_table(strategy), ""]
    if grid_path is not None:
        lines += [f"**Samples** ({grid_caption})", "", f"![sample grid]({grid_path})", ""]
    return "\n".join(lines)


def write_study_presentation(study: optuna.Study, config: StudyConfig) -> None:
    """The metric name and the study note, from what the study recorded (written again once
    the noise floor is measured)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([metric_name(config)])
    body = study_note(
        config,
        warm_start_notes=records.read_warm_start_notes(study),
        artifact_store=records.read_artifact_store(study),
        noise_floor=records.read_noise_floor(study),
    )
    save_note(study, body)


def write_trial_note(trial: optuna.Trial, body: str) -> None:
    """``save_note(trial, body)``; on a storage with ``write_note`` (the service's) in one
    transaction that reads one attribute, where ``save_note`` reads all of the study's twice.
    The keys are optuna-dashboard's (private, pinned in pyproject.toml; ``get_note`` reads
    them back in the tests)."""
    write = getattr(records.backing_storage(trial), "write_note", None)
    if write is None:
        save_note(trial, body)
        return
    trial_id = trial._trial_id
    write(
        trial.study._study_id,
        version_key=note_ver_key(trial_id),
        chunk_prefix=note_str_key_prefix(trial_id),
        chunks=list(split_body(body, trial_id).values()),
    )
