"""A trial's artifacts: the sample grid and schedule plot, uploaded without touching the FID."""

import logging

import numpy as np
import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna_dashboard import get_note
from PIL import Image

from autonat_search.config import parse_study_config
from autonat_search.execution.artifact_images import (
    GRID_PAD,
    grid_shape,
    sample_grid_image,
    schedule_plot_image,
)
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.trial_artifacts import (
    GRID_FILE,
    IMAGENET_GRID_CLASSES,
    SCHEDULES_FILE,
    TrialArtifacts,
    grid_labels,
    grid_seed,
)
from autonat_search.records import TRIAL_ARTIFACT_SECONDS, TRIAL_FID_PER_RUNG
from autonat_search.space import build_space
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

CONFIG = {
    "name": "artifacts",
    "bundle": "unused.yaml",
    "steps": 4,
    "budget": {"n_trials": 2},
    "sampler": {"name": "random", "seed": 3},
    "fidelity": {"rungs": [40, 80], "pruner": "none"},
    "samples": {"chunk": 20, "batch_size": 40, "seed": 5},
    "device": {"kind": "cpu", "precision": "fp32"},
}


@pytest.fixture(scope="module")
def bundle(quick_digits_bundle):
    return load_bundle(quick_digits_bundle)


def _objective(bundle, artifacts):
    config = parse_study_config(CONFIG)
    space = build_space(config.space, steps=config.steps)
    return FidObjective(bundle, space, config, device_name="cpu", artifacts=artifacts)


def test_grid_labels_cover_small_label_sets_and_pick_sixteen_imagenet_classes():
    assert grid_labels(10) == list(range(10))
    assert grid_labels(1000) == list(IMAGENET_GRID_CLASSES)
    assert len(set(IMAGENET_GRID_CLASSES)) == 16 and max(IMAGENET_GRID_CLASSES) < 1000
    spread = grid_labels(100)
    assert len(spread) == 16 and spread[0] == 0 and spread[-1] == 99
    with pytest.raises(ValueError, match="classes must be >= 1"):
        grid_labels(0)
    assert grid_seed(0) != grid_seed(1)


def test_grid_image_places_each_sample_in_its_cell_enlarged_pixel_for_pixel():
    images = torch.rand(10, 3, 8, 8)
    grid = sample_grid_image(images)
    assert grid_shape(10) == (2, 5) and grid_shape(16) == (2, 8) and grid_shape(3) == (1, 3)
    assert grid.size == (5 * (64 + GRID_PAD) + GRID_PAD, 2 * (64 + GRID_PAD) + GRID_PAD)
    pixels = torch.from_numpy(np.asarray(grid).astype(np.float32))
    # sample 6 is row 1, column 1; its pixel (2, 3) fills an 8x8 block of the cell
    top = GRID_PAD + (64 + GRID_PAD) + 2 * 8
    left = GRID_PAD + (64 + GRID_PAD) + 3 * 8
    expected = (images[6, :, 2, 3] * 255).round()
    assert torch.equal(pixels[top : top + 8, left : left + 8], expected.expand(8, 8, 3))
    large = sample_grid_image(torch.rand(16, 3, 256, 256))
    assert large.size == (8 * (128 + GRID_PAD) + GRID_PAD, 2 * (128 + GRID_PAD) + GRID_PAD)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        sample_grid_image(torch.rand(3, 8, 8))


def test_schedule_plot_draws_each_schedule_in_its_color():
    plot = schedule_plot_image(GenerationStrategy.reference_initial(8))
    colors = {tuple(int(c) for c in p) for p in np.asarray(plot).reshape(-1, 3)}
    assert plot.size == (480, 300)
    assert {(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)} <= colors


def test_artifacts_are_uploaded_without_changing_the_fid(bundle, tmp_path):
    """The same trials with and without artifacts: identical FIDs; the grid is the bundle's
    samples of the grid labels and noise."""
    values = {}
    for with_artifacts in (False, True):
        artifacts = TrialArtifacts(str(tmp_path / "store"), 5) if with_artifacts else None
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
        study.optimize(_objective(bundle, artifacts), n_trials=2)
        values[with_artifacts] = [t.user_attrs[TRIAL_FID_PER_RUNG] for t in study.trials]
    assert values[True] == values[False]
    trial = study.trials[1]
    metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
    assert set(metas) == {GRID_FILE, SCHEDULES_FILE}
    store = FileSystemArtifactStore(tmp_path / "store")
    download_artifact(
        artifact_store=store,
        artifact_id=metas[GRID_FILE].artifact_id,
        file_path=str(tmp_path / "g.png"),
    )
    grid = Image.open(tmp_path / "g.png")
    strategy = GenerationStrategy.from_reference_dict(trial.user_attrs["strategy"])
    expected = sample_grid_image(TrialArtifacts("unused", 5).sample_images(bundle, strategy))
    assert grid.size == expected.size and np.array_equal(np.asarray(grid), np.asarray(expected))
    assert trial.user_attrs[TRIAL_ARTIFACT_SECONDS] >= 0.0
    live = optuna.Trial(study, trial._trial_id)
    note = get_note(live)
    assert f"### Trial 1: complete, FID@80 = {trial.value:.4f}" in note
    assert f"/artifacts/{study._study_id}/{trial._trial_id}/{metas[GRID_FILE].artifact_id}" in note


def test_a_failing_upload_logs_one_line_and_the_trial_completes(bundle, tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    with caplog.at_level(logging.WARNING, logger="autonat_search.execution.trial_artifacts"):
        study.optimize(_objective(bundle, TrialArtifacts(str(blocker), 5)), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "trial 0: artifacts not uploaded to" in warnings[0]
    assert "\n" not in warnings[0]
    assert get_all_artifact_meta(trial, storage=study._storage) == []
    assert "![sample grid]" not in get_note(optuna.Trial(study, trial._trial_id))
