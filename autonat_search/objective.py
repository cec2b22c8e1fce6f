"""The multi-fidelity FID objective with common random numbers (SPEC 7).

A trial's strategy is evaluated rung by rung (e.g. 5k, 10k, 50k samples). Each rung adds
the chunks beyond the previous rung to the same merged statistics, reports FID@n as an
intermediate value at step n, and may be pruned. The trial records its strategy (reference
format), FID per rung, images generated, seconds and device as user attributes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import optuna

from autonat_search.config import StudyConfig
from autonat_search.errors import TrialFailure
from autonat_search.evaluation import SamplePlan, evaluate_chunks
from autonat_search.space import SearchSpace
from nat_core.pipeline import GeneratorBundle
from nat_core.strategy import GenerationStrategy

STRATEGY_ATTR = "strategy"
FID_ATTR = "fid_per_rung"
IMAGES_ATTR = "images_generated"
SECONDS_ATTR = "seconds"
DEVICE_ATTR = "device"
FAIL_ATTR = "fail_reason"
WARM_START_ATTR = "warm_start"


def sample_plan(config: StudyConfig, *, seed: int | None = None) -> SamplePlan:
    return SamplePlan(
        seed=config.samples.seed if seed is None else seed,
        chunk=config.samples.chunk,
        batch_size=config.samples.batch_size,
        labels=config.samples.labels,
        precision=config.device.precision,  # type: ignore[arg-type]
    )


def trial_strategy(trial: optuna.Trial, space: SearchSpace) -> GenerationStrategy:
    """The strategy of a trial; an enqueued warm start carries its exact strategy."""
    strategy = space.suggest(trial)
    exact = trial.user_attrs.get(STRATEGY_ATTR)
    if exact is not None:
        return GenerationStrategy.from_reference_dict(exact, source=f"trial {trial.number}")
    trial.set_user_attr(STRATEGY_ATTR, strategy.to_reference_dict())
    return strategy


@dataclass
class FidObjective:
    bundle: GeneratorBundle
    space: SearchSpace
    config: StudyConfig
    device_name: str

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._evaluate(trial)
        except (optuna.TrialPruned, TrialFailure):
            raise
        except Exception as error:  # out of memory, a broken bundle...: say why on the trial
            trial.set_user_attr(FAIL_ATTR, f"{type(error).__name__}: {error}"[:500])
            raise

    def _evaluate(self, trial: optuna.Trial) -> float:
        strategy = trial_strategy(trial, self.space)
        plan = sample_plan(self.config)
        trial.set_user_attr(DEVICE_ATTR, self.device_name)
        stats = self.bundle.empty_stats()
        fids: dict[str, float] = {}
        started, done, fid = time.perf_counter(), 0, math.nan
        for index, rung in enumerate(self.config.fidelity.rungs):
            stats = stats.merge(
                evaluate_chunks(self.bundle, strategy, plan.chunks_between(done, rung), plan)
            )
            done = rung
            fid = self.bundle.fid(stats)
            fids[str(rung)] = fid
            trial.set_user_attr(FID_ATTR, fids)
            trial.set_user_attr(IMAGES_ATTR, done)
            trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 3))
            if not math.isfinite(fid):
                reason = f"FID@{rung} is not finite ({fid})"
                trial.set_user_attr(FAIL_ATTR, reason)
                raise TrialFailure(reason)
            trial.report(fid, step=rung)
            last = index == len(self.config.fidelity.rungs) - 1
            if not last and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at FID@{rung} = {fid:.4f}")
        return fid
