"""The noise floor: measured once per study by the first worker, shown by status and export."""

import time

import optuna
import pytest
import yaml
from optuna_dashboard import get_note

from autonat_search import records
from autonat_search.config import load_study_config
from autonat_search.execution.noise_floor import (
    NOISE_FLOOR_SEEDS,
    _claim,
    _keeping_claim,
    ensure_noise_floor,
    noise_floor_seeds,
)
from autonat_search.reporting import format_status, status_report
from autonat_search.reporting.export import best_of_study, write_strategy_file
from autonat_search.storage import StudyLock, open_storage
from autonat_search.study import start_study
from nat_core.pipeline import load_bundle
from nat_core.strategy import GenerationStrategy

optuna.logging.set_verbosity(optuna.logging.WARNING)
RUNGS = [20, 40]


def _study(tmp_path, bundle_path):
    data = {
        "name": "floor",
        "bundle": str(bundle_path),
        "steps": 4,
        "fidelity": {"rungs": RUNGS, "reduction_factor": 2},
        "budget": {"n_trials": 4},
        "samples": {"seed": 3, "chunk": 20, "batch_size": 40},
        "device": {"kind": "cpu", "precision": "fp32"},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = load_study_config(path)
    study, _ = start_study(config, open_storage(url))
    return study, config, url


@pytest.mark.slow
def test_the_first_worker_measures_it_once_and_later_ones_read_it(tmp_path, quick_digits_bundle):
    study, config, url = _study(tmp_path, quick_digits_bundle)
    bundle = load_bundle(quick_digits_bundle)
    lock = StudyLock(url, "floor")
    assert "| noise floor | not measured yet" in get_note(study)
    floor = ensure_noise_floor(study, bundle, config, lock)
    assert floor is not None and floor.warm_start == "reference-initial"
    assert floor.seeds == noise_floor_seeds(config) and len(set(floor.seeds)) == NOISE_FLOOR_SEEDS
    assert config.samples.seed not in floor.seeds
    assert sorted(floor.fids) == RUNGS
    for rung in RUNGS:
        assert len(floor.fids[rung]) == NOISE_FLOOR_SEEDS and floor.spread[rung] > 0.0
    stored = records.read_noise_floor(study)
    assert stored == floor
    spreads = ", ".join(f"FID@{rung} {floor.spread[rung]:.4f}" for rung in RUNGS)
    assert (
        f"| noise floor | reference-initial on {NOISE_FLOOR_SEEDS} sample seeds, largest "
        f"minus smallest: {spreads} |" in get_note(study)
    )  # the study note, written again
    records.write_noise_floor_claim(study, 0.0)  # even an old claim: it is measured already
    assert ensure_noise_floor(study, bundle, config, lock) == floor


def test_a_fresh_claim_by_another_worker_is_left_alone(tmp_path, quick_digits_bundle):
    study, config, url = _study(tmp_path, quick_digits_bundle)
    records.write_noise_floor_claim(study, time.time())

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the bundle was used ({name}) although another worker claimed")

    assert ensure_noise_floor(study, Untouchable(), config, StudyLock(url, "floor")) is None
    assert records.read_noise_floor(study) is None


def test_a_claim_older_than_the_grace_period_is_taken_over(tmp_path, quick_digits_bundle):
    study, config, url = _study(tmp_path, quick_digits_bundle)
    lock, grace = StudyLock(url, "floor"), config.heartbeat.grace_period
    now = time.time()
    records.write_noise_floor_claim(study, now - grace + 5)  # its worker is alive
    assert not _claim(study, lock, now, grace)
    records.write_noise_floor_claim(study, now - grace - 5)  # its worker died
    assert _claim(study, lock, now, grace)
    assert records.read_noise_floor_claim(study) == now


def test_the_claim_is_renewed_while_measuring_and_given_up_on_failure(
    tmp_path, quick_digits_bundle
):
    study, _, _ = _study(tmp_path, quick_digits_bundle)
    records.write_noise_floor_claim(study, 1.0)
    with _keeping_claim(study, interval=0.05):
        time.sleep(0.5)
    renewed = records.read_noise_floor_claim(study)
    assert renewed is not None and time.time() - renewed < 1.0
    with pytest.raises(RuntimeError, match="out of memory"):
        with _keeping_claim(study, interval=0.05):
            raise RuntimeError("out of memory")
    assert records.read_noise_floor_claim(study) == 0.0  # free for the next worker


@pytest.mark.parametrize(("spread", "verdict"), [(0.5, "beyond"), (2.0, "within")])
def test_status_and_export_say_whether_the_lead_exceeds_the_spread(
    tmp_path, quick_digits_bundle, spread, verdict
):
    study, _, _ = _study(tmp_path, quick_digits_bundle)
    report = status_report(study)
    assert "noise floor: not measured yet" in format_status(report)
    warm = study.ask()
    assert warm.user_attrs[records.TRIAL_WARM_START] == "reference-initial"
    study.tell(warm, 10.0)
    best = study.ask()
    records.write_strategy(
        best, GenerationStrategy([0.7, 0.4, 0.1], [1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 2])
    )
    study.tell(best, 9.0)
    records.write_noise_floor(
        study,
        records.NoiseFloor(
            "reference-initial",
            (1, 2, 3),
            {20: (12.0, 13.0, 14.0), 40: (10.0, 10.0 + spread, 10.2)},
        ),
    )
    text = format_status(status_report(study))
    assert "FID@20 2.0000, FID@40 " + f"{spread:.4f}" in text
    assert f"leads reference-initial by 1.0000 at FID@40: {verdict} the noise" in text
    exported = best_of_study(study)
    assert exported.trial == best.number
    out = write_strategy_file(study, exported, tmp_path / "best.yaml")
    assert f"{verdict} the noise" in out.read_text()
