"""evaluate and export-best-strategy --reevaluate, on real Ray actors."""

import uuid

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from autonat_search.cli import app
from autonat_search.config import parse_study_config
from autonat_search.execution import SamplePlan, WorkerOptions, evaluate_chunks, run_worker
from autonat_search.records import read_reevaluations
from autonat_search.storage import open_storage
from autonat_search.study import start_study
from nat_core.fid import fid_from_stats
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

runner = CliRunner()


def test_evaluate_spreads_over_actors_and_matches_one_process(
    ray_session, quick_digits_bundle, tmp_path
):
    strategy = GenerationStrategy.reference_initial(4)
    path = tmp_path / "s.yaml"
    strategy.save(path)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--bundle",
            str(quick_digits_bundle),
            "--strategy",
            str(path),
            "--n",
            "80",
            "--chunk",
            "20",
            "--batch-size",
            "40",
            "--seed",
            "5",
            "--cpu-actors",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 actors" in result.output
    reported = float(result.output.split("=")[1].split()[0])
    bundle = load_bundle(quick_digits_bundle)
    plan = SamplePlan(seed=5, chunk=20, batch_size=40)
    stats = evaluate_chunks(bundle, strategy, plan.chunks_between(0, 80), plan)
    expected = fid_from_stats(stats, bundle.reference_mu, bundle.reference_sigma)
    assert reported == pytest.approx(expected, abs=6e-5)


def test_evaluate_rejects_a_count_off_the_chunk_grid(quick_digits_bundle, tmp_path):
    path = tmp_path / "s.yaml"
    GenerationStrategy.reference_initial(4).save(path)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--bundle",
            str(quick_digits_bundle),
            "--strategy",
            str(path),
            "--n",
            "90",
            "--chunk",
            "20",
        ],
    )
    assert result.exit_code != 0
    assert "sample count 90 is not a multiple of chunk 20" in str(result.exception)


def test_export_with_reevaluation_reports_both_figures(ray_session, quick_digits_bundle, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = parse_study_config(
        {
            "name": f"re-{uuid.uuid4().hex[:6]}",
            "bundle": str(quick_digits_bundle),
            "steps": 4,
            "budget": {"n_trials": 4},
            "sampler": {"name": "random", "seed": 1},
            "fidelity": {"rungs": [40], "pruner": "none"},
            "samples": {"chunk": 20, "batch_size": 40},
            "device": {"kind": "cpu", "precision": "fp32"},
        }
    )
    start_study(config, open_storage(url))
    run_worker(WorkerOptions(storage_url=url, study_name=config.name), cpu_actors=1)
    out = tmp_path / "best.yaml"
    result = runner.invoke(
        app,
        [
            "export-best-strategy",
            "--study",
            config.name,
            "-o",
            str(out),
            "--storage",
            url,
            "--reevaluate",
            "2",
            "--seed",
            "9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("re-evaluated (seed 9)") == 3  # two rows and the summary
    text = out.read_text()
    assert "(re-evaluated, fresh sample seed 9)" in text and "(search, study sample seed)" in text
    assert sorted(yaml.safe_load(text)) == [
        "manual_cfg",
        "manual_ratios",
        "manual_samp_temp",
        "manual_temp",
    ]
    study = optuna.load_study(study_name=config.name, storage=open_storage(url))
    reevaluations = read_reevaluations(study)
    assert len(reevaluations) == 2
    assert all(set(by_seed) == {9} for by_seed in reevaluations.values())
    same_seed = runner.invoke(
        app,
        [
            "export-best-strategy",
            "--study",
            config.name,
            "-o",
            str(out),
            "--storage",
            url,
            "--reevaluate",
            "1",
            "--seed",
            "0",
        ],
    )
    assert "is the study's own sample seed" in str(same_seed.exception)
