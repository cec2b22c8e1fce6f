"""Successive halving over exactly the study's rungs (``fidelity.pruner: successive-halving``).

Optuna's ``SuccessiveHalvingPruner`` decides at ``min_resource * reduction_factor^k``: with
rungs 5k/10k/50k and a factor of 3 that is 5k, 15k, 45k, so the 10k rung never decides. This
pruner decides at each rung below the top one, asynchronously like ASHA: a trial that
reports FID at rung ``n`` goes on if its value is among the best ``max(1, m //
reduction_factor)`` of the ``m`` trials (itself included, any state) that reported at ``n``;
otherwise it is pruned. The first trial to reach a rung goes on.
"""

from __future__ import annotations

import math

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["RungPruner"]


class RungPruner(BasePruner):
    def __init__(self, rungs: tuple[int, ...], reduction_factor: int) -> None:
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
        self.rungs = tuple(rungs)
        self.reduction_factor = reduction_factor

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.rungs[:-1]:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        values = [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number
            and t.state != TrialState.FAIL
            and step in t.intermediate_values
        ]
        values = sorted(values + [value], reverse=study.direction == StudyDirection.MAXIMIZE)
        kept = max(1, len(values) // self.reduction_factor)
        threshold = values[kept - 1]
        if study.direction == StudyDirection.MAXIMIZE:
            return value < threshold
        return value > threshold
