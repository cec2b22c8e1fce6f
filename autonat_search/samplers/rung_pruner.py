"""Successive halving over exactly the study's rungs (``fidelity.pruner: successive-halving``).

Optuna's ``SuccessiveHalvingPruner`` decides at ``min_resource * reduction_factor^k``: with
rungs 5k/10k/50k and a factor of 3 that is 5k, 15k, 45k, so the 10k rung never decides. This
pruner decides at each rung below the top one, asynchronously like ASHA: a trial that
reports FID at rung ``n`` goes on if its value is among the best ``max(1, m //
reduction_factor)`` of the ``m`` trials (itself included, any state) that reported at ``n``;
otherwise it is pruned. The first trial to reach a rung goes on. A value that is not a
number ranks last.

Where the service passes ``rung_values`` (the storage's one-query read of a rung's values),
the pruner uses it instead of ``study.get_trials``, which reads every unfinished trial whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["RungPruner", "RungValues"]

RungValues = Callable[[optuna.Study, int], list[tuple[int, float]]]
"""(study, rung) -> (trial number, value) of every trial that reported there and did not fail."""


class RungPruner(BasePruner):
    def __init__(
        self,
        rungs: tuple[int, ...],
        reduction_factor: int,
        *,
        rung_values: RungValues | None = None,
    ) -> None:
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
        self.rungs = tuple(rungs)
        self.reduction_factor = reduction_factor
        self.rung_values = rung_values or _values_of_trials

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.rungs[:-1]:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        maximize = study.direction == StudyDirection.MAXIMIZE
        worst = -math.inf if maximize else math.inf
        values = [
            worst if math.isnan(v) else v
            for number, v in self.rung_values(study, step)
            if number != trial.number
        ]
        values = sorted(values + [value], reverse=maximize)
        kept = max(1, len(values) // self.reduction_factor)
        threshold = values[kept - 1]
        return value < threshold if maximize else value > threshold


def _values_of_trials(study: optuna.Study, step: int) -> list[tuple[int, float]]:
    return [
        (t.number, t.intermediate_values[step])
        for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.FAIL and step in t.intermediate_values
    ]
