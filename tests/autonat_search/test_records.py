"""The study and trial record: the stored names are a format (existing studies must stay
readable), and every helper reads back what it wrote."""

import optuna
import pytest
from optuna.trial import TrialState

from autonat_search import records
from autonat_search.errors import StudyError
from nat_core.strategy import GenerationStrategy


def test_attribute_names_are_the_stored_format():
    assert (
        records.STUDY_CONFIG,
        records.STUDY_BUDGET,
        records.STUDY_FINGERPRINT,
        records.STUDY_BUNDLE_PATH,
        records.STUDY_WARM_START_NOTES,
        records.STUDY_READY,
        records.STUDY_REEVALUATIONS,
    ) == (
        "config",
        "n_trials",
        "bundle_fingerprint",
        "bundle_path",
        "warm_start_notes",
        "ready",
        "reevaluations",
    )
    assert (
        records.TRIAL_STRATEGY,
        records.TRIAL_FID_PER_RUNG,
        records.TRIAL_IMAGES,
        records.TRIAL_SECONDS,
        records.TRIAL_DEVICE,
        records.TRIAL_WARM_START,
        records.TRIAL_FAIL_REASON,
    ) == (
        "strategy",
        "fid_per_rung",
        "images_generated",
        "seconds",
        "device",
        "warm_start",
        "fail_reason",
    )


def test_study_record_round_trip(tmp_path):
    study = optuna.create_study()
    assert not records.is_ready(study)
    setup = records.StudySetup(
        config={"name": "s", "budget": {"n_trials": 3}},
        budget=3,
        fingerprint={"content": {"name": "b"}, "files": {}},
        bundle_path=tmp_path / "bundle.yaml",
    )
    records.write_study_setup(study, setup)
    records.write_warm_start_notes(study, ["reference-initial: enqueued exactly"])
    records.mark_ready(study)
    records.write_budget(study, 5)
    assert records.is_ready(study)
    assert records.read_config_dict(study) == setup.config
    assert records.read_budget(study) == 5
    assert records.read_fingerprint(study) == setup.fingerprint
    assert records.read_bundle_path(study) == tmp_path / "bundle.yaml"
    assert records.read_warm_start_notes(study) == ["reference-initial: enqueued exactly"]
    assert study.user_attrs["bundle_path"] == str(tmp_path / "bundle.yaml")  # JSON-friendly


def test_reevaluations_accumulate_by_trial_and_seed():
    study = optuna.create_study()
    assert records.read_reevaluations(study) == {}
    records.add_reevaluation(study, {0: 3.5, 2: 4.0}, seed=1)
    records.add_reevaluation(study, {0: 3.25}, seed=7)
    assert records.read_reevaluations(study) == {0: {1: 3.5, 7: 3.25}, 2: {1: 4.0}}
    assert study.user_attrs["reevaluations"] == {"0": {"1": 3.5, "7": 3.25}, "2": {"1": 4.0}}


def test_trial_record_reads_back_what_the_objective_writes():
    strategy = GenerationStrategy.reference_initial(4)
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        assert records.read_strategy(trial) is None
        records.write_strategy(trial, strategy)
        records.write_device(trial, "cpu")
        records.write_rung(trial, {40: 9.0}, images=40, seconds=1.23456)
        records.write_rung(trial, {40: 9.0, 80: 8.5}, images=80, seconds=2.5)
        return 8.5

    study.optimize(objective, n_trials=1)
    record = records.TrialRecord.from_frozen(study.trials[0])
    assert record.number == 0 and record.state == TrialState.COMPLETE and record.value == 8.5
    assert record.fid_per_rung == {40: 9.0, 80: 8.5}
    assert study.trials[0].user_attrs["fid_per_rung"] == {"40": 9.0, "80": 8.5}
    assert record.images == 80 and record.seconds == 2.5 and record.device == "cpu"
    assert record.warm_start is None and record.fail_reason is None
    assert records.require_strategy(study.trials[0]) == strategy
    assert GenerationStrategy.from_reference_dict(record.strategy) == strategy


def test_enqueued_warm_start_and_failure_records():
    study = optuna.create_study()
    exact = GenerationStrategy.reference_initial(4)
    study.enqueue_trial({}, user_attrs=records.enqueued_trial_attrs("reference-initial", exact))
    study.enqueue_trial({}, user_attrs=records.enqueued_trial_attrs("nearest", None))

    def failing(trial: optuna.Trial) -> float:
        records.write_fail_reason(trial, "x" * 600)
        raise RuntimeError("boom")

    study.optimize(failing, n_trials=2, catch=(RuntimeError,))
    first, second = (records.TrialRecord.from_frozen(t) for t in study.trials)
    assert first.warm_start == "reference-initial"
    assert records.read_strategy(study.trials[0]) == exact
    assert second.warm_start == "nearest" and second.strategy is None
    assert first.state == TrialState.FAIL and first.fail_reason == "x" * 500
    with pytest.raises(StudyError, match="trial 1 has no recorded strategy"):
        records.require_strategy(study.trials[1])


def test_a_stored_trial_gets_a_group_of_attributes_in_one_write(tmp_path):
    from sqlalchemy import event

    from autonat_search.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    writes = []
    event.listen(
        storage.engine,
        "before_cursor_execute",
        lambda *args: writes.append(args[2]) if args[2].startswith("INSERT") else None,
    )
    strategy = GenerationStrategy.reference_initial(8)
    records.write_strategy(trial, strategy)
    records.write_rung(trial, {40: 9.0}, images=40, seconds=1.5)
    assert len(writes) == 2  # one upsert of 31 attributes, one of 3
    assert records.read_strategy(trial) == strategy  # the live trial's own view
    assert trial.user_attrs == study.trials[0].user_attrs
    assert study.trials[0].user_attrs[records.TRIAL_IMAGES] == 40
    assert len(trial.user_attrs) == 1 + len(records.step_attrs(strategy)) + 3
