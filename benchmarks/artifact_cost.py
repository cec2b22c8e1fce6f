"""What a trial's artifacts (sample grid, schedule plot, note) cost, on the digits demo.

The same trials (the demo study's rungs, the same random strategies) run twice in one
process on an embedded store, alternating: without artifacts (the baseline) and with them
(grid + plot uploaded to a folder store, trial note written). Prints the mean wall and CPU
time of a trial in each arm (one torch thread; CPU time is the steadier figure on a shared
machine), their ratio, and the mean ``artifact_seconds`` the trials recorded.

    python benchmarks/artifact_cost.py [--trials 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch
import yaml

from autonat_search.config import parse_study_config
from autonat_search.execution.objective import FidObjective
from autonat_search.execution.trial_artifacts import TrialArtifacts
from autonat_search.records import TRIAL_ARTIFACT_SECONDS
from autonat_search.space import build_space
from autonat_search.storage import open_storage
from nat_core.pipeline import load_bundle

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a worker's CPU actor
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = yaml.safe_load((ROOT / "studies" / "digits_demo.yaml").read_text())
    data["fidelity"]["pruner"] = "none"  # every trial runs all rungs: equal work in both arms
    config = parse_study_config(data, source_dir=ROOT / "studies")
    bundle = load_bundle(config.bundle_path())
    space = build_space(config.space, steps=config.steps)
    with tempfile.TemporaryDirectory(prefix="artifact-cost-") as name:
        folder = Path(name)
        storage = open_storage(f"sqlite:///{folder / 'studies.db'}")
        arms = {}
        for arm in ("baseline", "artifacts"):
            artifacts = TrialArtifacts(str(folder / "store"), config.samples.seed)
            objective = FidObjective(
                bundle=bundle,
                space=space,
                config=config,
                device_name="cpu",
                artifacts=artifacts if arm == "artifacts" else None,
            )
            study = optuna.create_study(
                study_name=arm, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0)
            )
            arms[arm] = (study, objective, [], [])
        for _ in range(args.trials):
            for study, objective, wall, cpu in arms.values():
                started, cpu_started = time.perf_counter(), time.process_time()
                study.optimize(objective, n_trials=1)
                wall.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started)
        baseline = statistics.mean(arms["baseline"][2])
        with_artifacts = statistics.mean(arms["artifacts"][2])
        cpu_baseline = statistics.mean(arms["baseline"][3])
        cpu_artifacts = statistics.mean(arms["artifacts"][3])
        recorded = [t.user_attrs[TRIAL_ARTIFACT_SECONDS] for t in arms["artifacts"][0].trials]
        same = [t.value for t in arms["baseline"][0].trials] == [
            t.value for t in arms["artifacts"][0].trials
        ]
    cost = statistics.mean(recorded)
    print(
        f"digits demo, {args.trials} trials of FID@{config.full_samples} per arm, 1 thread: "
        f"baseline {baseline:.3f} s/trial, with artifacts {with_artifacts:.3f} s/trial "
        f"({(with_artifacts / baseline - 1) * 100:+.1f}%); CPU {cpu_baseline:.3f} vs "
        f"{cpu_artifacts:.3f} s/trial ({(cpu_artifacts / cpu_baseline - 1) * 100:+.1f}%); "
        "artifact_seconds recorded "
        f"{cost:.3f} s/trial ({cost / baseline * 100:.1f}% "
        f"of a baseline trial); FIDs identical in both arms: {same}"
    )


if __name__ == "__main__":
    main()
