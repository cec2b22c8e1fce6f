"""What the dashboard shows: metric name, study note, trial note, per-step attributes."""

import optuna
import pytest
import yaml
from optuna_dashboard import get_note

from autonat_search import records
from autonat_search.config import load_study_config, parse_study_config
from autonat_search.errors import ConfigError
from autonat_search.notes import metric_name, strategy_table, study_note, trial_note
from autonat_search.storage import open_storage
from autonat_search.study import start_study
from nat_core.strategy import GenerationStrategy

BASE = {"name": "notes", "bundle": "b.yaml", "steps": 3, "budget": {"n_trials": 5}}


def test_artifact_store_defaults_to_a_folder_beside_the_study_file(tmp_path):
    config = parse_study_config(BASE, source_dir=tmp_path)
    assert config.artifacts.store == "artifacts/"
    assert config.artifact_location() == str(tmp_path / "artifacts")
    s3 = parse_study_config({**BASE, "artifacts": {"store": "s3://bucket/runs/x"}})
    assert s3.artifact_location() == "s3://bucket/runs/x"
    off = parse_study_config({**BASE, "artifacts": {"store": "none"}})
    assert off.artifact_location() is None


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("gs://bucket", 'artifacts.store must be a folder, s3://bucket/prefix or "none"'),
        ("s3://", 'artifacts.store must be a folder, s3://bucket/prefix or "none"'),
        ("", 'artifacts.store must be a folder, s3://bucket/prefix or "none"'),
    ],
)
def test_bad_artifact_stores_are_named(store, message):
    with pytest.raises(ConfigError, match=message):
        parse_study_config({**BASE, "artifacts": {"store": store}})


def test_step_attrs_name_every_value_by_schedule_and_step():
    strategy = GenerationStrategy.reference_initial(3)
    attrs = records.step_attrs(strategy)
    assert attrs == {
        "mask_ratio_1": strategy.mask_ratios[0],
        "mask_ratio_2": strategy.mask_ratios[1],
        "remask_temp_1": strategy.remask_temps[0],
        "remask_temp_2": strategy.remask_temps[1],
        "sample_temp_1": 1.0,
        "sample_temp_2": 1.0,
        "sample_temp_3": 1.0,
        "cfg_1": strategy.cfg_scales[0],
        "cfg_2": strategy.cfg_scales[1],
        "cfg_3": strategy.cfg_scales[2],
    }
    long = records.step_attrs(GenerationStrategy.reference_initial(12))
    assert "mask_ratio_01" in long and "cfg_12" in long and len(long) == 4 * 12 - 2


def test_study_note_names_bundle_space_rungs_sampler_and_budget(tmp_path):
    config = parse_study_config(BASE, source_dir=tmp_path)
    body = study_note(config, warm_start_notes=["reference-initial: enqueued exactly"])
    assert metric_name(config) == "FID@50000"
    assert body.startswith("## notes: generation-strategy search, objective FID@50000")
    for row in (
        "| bundle | `b.yaml` |",
        "| space | per-step: mask_ratio [0, 1], remask_temp [0, 4], sample_temp [0, 4], "
        "cfg [0, 4] |",
        "| sampler | tpe, seed 0 |",
        "| rungs | 5000, 10000, 50000 samples (successive-halving, reduction factor 3) |",
        "| budget | 5 finished (complete + pruned) trials |",
        "| warm starts | reference-initial: enqueued exactly |",
        "| artifacts | none |",
    ):
        assert row in body
    assert "step n = the sample count" in body
    assert "Optuna gives it the FID of that rung as its value" in body
    assert "| noise floor | not measured yet" in body
    floor = records.NoiseFloor("reference-initial", (1, 2, 3), {5000: (9.0, 9.5, 9.25)})
    measured = study_note(config, noise_floor=floor)
    assert (
        "| noise floor | reference-initial on 3 sample seeds, largest minus smallest: "
        "FID@5000 0.5000 |" in measured
    )


def test_trial_note_holds_fid_per_rung_and_the_strategy_per_step():
    strategy = GenerationStrategy.reference_initial(3)
    record = records.TrialRecord.from_attrs(
        7, {"fid_per_rung": {"40": 12.5, "80": 11.25}, "images_generated": 80, "seconds": 2.0}
    )
    body = trial_note(record, strategy, outcome="complete", grid_path="/artifacts/1/2/ab-c")
    assert "### Trial 7: complete" in body
    assert "| samples | 40 | 80 |" in body and "| FID | 12.5000 | 11.2500 |" in body
    table = strategy_table(strategy)
    assert len(table) == 2 + 3 and all(line in body for line in table)
    assert table[2] == f"| 1 | {strategy.mask_ratios[0]:.4f} | 1.0000 | 1.0000 | 0.3333 |"
    assert table[-1].startswith("| 3 | 0 (all decided) | – |")
    assert "![sample grid](/artifacts/1/2/ab-c)" in body


def test_start_study_names_the_metric_and_writes_the_study_note(tmp_path, quick_digits_bundle):
    study_file = tmp_path / "s.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                **BASE,
                "bundle": str(quick_digits_bundle),
                "fidelity": {"rungs": [40, 80]},
                "samples": {"chunk": 20},
            }
        )
    )
    config = load_study_config(study_file)
    study, _ = start_study(config, open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    assert study.metric_names == ["FID@80"]
    assert records.read_artifact_store(study) == str(tmp_path / "artifacts")
    note = get_note(study)
    assert "objective FID@80" in note and f"| artifacts | `{tmp_path / 'artifacts'}` |" in note
    raised = load_study_config(study_file).with_budget(9)
    again, outcome = start_study(raised, open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    assert "budget raised from 5 to 9" in outcome
    assert "| budget | 9 finished" in get_note(again)
    assert isinstance(again, optuna.Study)


@pytest.mark.parametrize("with_service_storage", [True, False])
def test_a_trial_note_is_read_back_by_optuna_dashboard(storage_url, with_service_storage):
    from sqlalchemy import event

    from autonat_search.notes import write_trial_note

    storage = open_storage(storage_url)
    if not with_service_storage:
        storage = optuna.storages.RDBStorage(storage_url)  # optuna-dashboard's own save_note
    study = optuna.create_study(storage=storage)
    other, trial = study.ask(), study.ask()
    write_trial_note(other, "the other trial's note")
    commits: list[int] = []
    event.listen(storage.engine, "commit", lambda connection: commits.append(1))
    long = "".join(f"line {i}\n" for i in range(1000))  # several chunks
    write_trial_note(trial, long)
    if with_service_storage:
        assert len(commits) == 1
    assert get_note(trial) == long
    write_trial_note(trial, "short")  # replaces every chunk of the longer note
    assert get_note(trial) == "short"
    assert get_note(other) == "the other trial's note"
    versions = optuna.storages.RDBStorage.get_study_system_attrs(storage, study._study_id)
    assert versions[f"dashboard:{trial._trial_id}:note_ver"] == 2
