"""A finished or pruned trial's artifacts: a grid of its samples and a plot of its schedules,
uploaded through Optuna's artifact API to the study's artifact store.

The grid's labels and noise are the same for every trial of a study (one image per class
up to 16 classes; 16 chosen classes of a 1000-class ImageNet bundle) and come from their own
generator, seeded from ``(samples.seed, "sample-grid")``, drawn after the trial's FID: the
FID samples never see it. Making or uploading artifacts never fails a trial: a failure is
logged in one line and the trial goes on without them.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna_dashboard.artifact import get_artifact_path

from autonat_search.execution.artifact_images import sample_grid_image, schedule_plot_image
from autonat_search.storage.artifacts import ArtifactStore, open_artifact_store
from nat_core.pipeline import GeneratorBundle, Precision
from nat_core.seeding import derive_seed
from nat_core.strategy import GenerationStrategy

__all__ = [
    "GRID_FILE",
    "IMAGENET_GRID_CLASSES",
    "SCHEDULES_FILE",
    "TrialArtifacts",
    "grid_labels",
    "grid_seed",
]

log = logging.getLogger(__name__)

GRID_FILE = "sample_grid.png"
SCHEDULES_FILE = "schedules.png"
_GRID_SIZE = 16
# Animals, food, objects, scenes: goldfish, loggerhead, macaw, flamingo, golden retriever,
# arctic fox, lion, otter, lesser panda, giant panda, balloon, space shuttle, cheeseburger,
# cliff, lakeside, volcano.
IMAGENET_GRID_CLASSES = (1, 33, 88, 130, 207, 279, 291, 360, 387, 388, 417, 812, 933, 972, 975, 980)


def grid_labels(classes: int) -> list[int]:
    """The labels of the sample grid: every class up to 16, else 16 chosen ones."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    if classes <= _GRID_SIZE:
        return list(range(classes))
    if classes == 1000:
        return list(IMAGENET_GRID_CLASSES)
    return [round(i * (classes - 1) / (_GRID_SIZE - 1)) for i in range(_GRID_SIZE)]


def grid_seed(sample_seed: int) -> int:
    """The grid's noise seed: its own stream, apart from every FID chunk's."""
    return derive_seed(sample_seed, "sample-grid")


@dataclass
class TrialArtifacts:
    """Makes and uploads one trial's artifacts to the store at ``location``."""

    location: str
    sample_seed: int
    precision: Precision = "fp32"
    _store: ArtifactStore | None = field(default=None, init=False, repr=False)

    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = open_artifact_store(self.location)
        return self._store

    def sample_images(self, bundle: GeneratorBundle, strategy: GenerationStrategy) -> torch.Tensor:
        labels = torch.tensor(grid_labels(bundle.spec.classes), device=bundle.device)
        generator = torch.Generator(device=bundle.device).manual_seed(grid_seed(self.sample_seed))
        return bundle.sample_images(strategy, labels, generator, precision=self.precision)

    def upload(
        self, trial: optuna.Trial, bundle: GeneratorBundle, strategy: GenerationStrategy
    ) -> str | None:
        """Upload the grid and the schedule plot; the grid's dashboard URL path, or None
        (logged) when anything failed."""
        try:
            with tempfile.TemporaryDirectory(prefix="autonat-artifacts-") as folder:
                grid = Path(folder) / GRID_FILE
                sample_grid_image(self.sample_images(bundle, strategy)).save(grid)
                plot = Path(folder) / SCHEDULES_FILE
                schedule_plot_image(strategy).save(plot)
                grid_id = upload_artifact(
                    artifact_store=self.store(), file_path=str(grid), study_or_trial=trial
                )
                upload_artifact(
                    artifact_store=self.store(), file_path=str(plot), study_or_trial=trial
                )
            return str(get_artifact_path(trial, grid_id))
        except Exception as error:  # an artifact is never worth a trial
            log.warning(
                "trial %d: artifacts not uploaded to %s (%s: %s)",
                trial.number,
                self.location,
                type(error).__name__,
                error,
            )
            return None

    def caption(self, bundle: GeneratorBundle) -> str:
        labels = grid_labels(bundle.spec.classes)
        return f"labels {', '.join(map(str, labels))}; noise seed {grid_seed(self.sample_seed)}"
