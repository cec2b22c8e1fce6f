"""Real Ray actors running real trials against PostgreSQL and the embedded store."""

import threading
import uuid

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from autonat_search.config import parse_study_config
from autonat_search.errors import BundleMismatchError
from autonat_search.execution import WorkerOptions, run_worker
from autonat_search.records import TrialRecord
from autonat_search.reporting import best_of_study, export_trials_csv, write_strategy_file
from autonat_search.storage import open_storage
from autonat_search.study import start_study
from nat_core.strategy import GenerationStrategy

RUNGS = [40, 80]


def _config(bundle, budget=8):
    return parse_study_config(
        {
            "name": f"w-{uuid.uuid4().hex[:8]}",
            "bundle": str(bundle),
            "steps": 4,
            "budget": {"n_trials": budget},
            "sampler": {"name": "random", "seed": 0},
            "fidelity": {"rungs": RUNGS, "pruner": "median"},
            "samples": {"chunk": 20, "batch_size": 40},
            "device": {"kind": "cpu", "precision": "fp32"},
            "warm_start": ["reference-initial"],
        }
    )


def _run_two_workers(url, name):
    options = WorkerOptions(
        storage_url=url,
        study_name=name,
        poll_seconds=0.2,
    )
    results, errors = [], []

    def one_worker():
        try:
            results.append(run_worker(options, cpu_actors=2, actor_cpus=0.5))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=one_worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    return results


def test_two_workers_with_two_actors_finish_exactly_the_budget(
    ray_session, storage_url, quick_digits_bundle, tmp_path
):
    config = _config(quick_digits_bundle)
    start_study(config, open_storage(storage_url))
    results = _run_two_workers(storage_url, config.name)
    assert sum(len(r) for r in results) == 4  # four actors in all

    study = optuna.load_study(study_name=config.name, storage=open_storage(storage_url))
    trials = study.get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 8
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert sorted(t.number for t in trials) == list(range(len(trials)))

    for t in trials:
        record = TrialRecord.from_frozen(t)
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == RUNGS
            assert record.images == 80
            assert t.value == t.intermediate_values[80] == record.fid_per_rung[80]
        elif t.state == TrialState.PRUNED:
            assert sorted(t.intermediate_values) == [40]
            assert record.images == 40  # pruned trials generate fewer images
            assert sorted(record.fid_per_rung) == [40]

    warm = trials[0]
    assert GenerationStrategy.from_reference_dict(
        warm.user_attrs["strategy"]
    ) == GenerationStrategy.reference_initial(4)

    best = best_of_study(study)
    out = write_strategy_file(study, best, tmp_path / "best.yaml")
    text = out.read_text()
    assert GenerationStrategy.load(out) == best.strategy
    data = yaml.safe_load(text)  # what the reference reads: exactly its four keys
    assert sorted(data) == ["manual_cfg", "manual_ratios", "manual_samp_temp", "manual_temp"]
    assert f"# trial: {best.trial}" in text and "# FID@80:" in text

    csv_path = tmp_path / "trials.csv"
    assert export_trials_csv(study, csv_path) == len(trials)
    header = csv_path.read_text().splitlines()[0].split(",")
    assert "fid@40" in header and "manual_ratios" in header


def test_a_worker_refuses_a_changed_bundle(ray_session, quick_digits_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(quick_digits_bundle.parent, copy)
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = _config(quick_digits_bundle)
    start_study(config, open_storage(url))
    stats = copy / "digits_demo" / "fid_stats.npz"
    stats.write_bytes(stats.read_bytes() + b"\0")
    with pytest.raises(BundleMismatchError, match="reference_stats differs"):
        run_worker(
            WorkerOptions(
                storage_url=url, study_name=config.name, bundle=copy / quick_digits_bundle.name
            ),
            cpu_actors=1,
        )
