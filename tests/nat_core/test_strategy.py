import math

import numpy as np
import pytest
import yaml

from nat_core.strategy import GenerationStrategy, StrategyError


def _valid(steps: int = 4) -> dict[str, list[float]]:
    return dict(
        mask_ratios=[0.9, 0.5, 0.2][: steps - 1],
        remask_temps=[1.0, 0.5, 0.1][: steps - 1],
        sample_temps=[1.0] * steps,
        cfg_scales=[0.0, 1.0, 2.0, 3.0][:steps],
    )


def test_published_strategy_round_trips_byte_for_byte(reference_dir):
    path = reference_dir / "autonat_l_t8_strategy.yaml"
    strategy = GenerationStrategy.load(path)
    assert strategy.steps == 8
    assert strategy.to_yaml() == path.read_text()
    assert strategy.cfg_scales[:3] == (0.0001, 0.0001, 0.0001)


def test_saved_file_with_comments_is_plain_reference_yaml(tmp_path, reference_dir):
    strategy = GenerationStrategy.load(reference_dir / "autonat_l_t8_strategy.yaml")
    out = tmp_path / "s.yaml"
    strategy.save(out, comments=["study: x", "FID@50000: 2.68"])
    data = yaml.safe_load(out.read_text())
    assert sorted(data) == ["manual_cfg", "manual_ratios", "manual_samp_temp", "manual_temp"]
    assert GenerationStrategy.load(out) == strategy


def test_reference_initial_schedule_matches_spec_formulas():
    s = GenerationStrategy.reference_initial(8)
    assert s.steps == 8
    expected_ratios = [math.cos(math.pi / 2 * k / 8) for k in range(1, 8)]
    assert np.allclose(s.mask_ratios, expected_ratios, atol=1e-15)
    assert np.allclose(s.remask_temps, [1 - k / 8 for k in range(7)], atol=1e-15)
    assert s.sample_temps == (1.0,) * 8
    assert np.allclose(s.cfg_scales, [k / 8 for k in range(1, 9)], atol=1e-15)


def test_vector_round_trip_in_reference_order():
    s = GenerationStrategy(**_valid())
    vector = s.to_vector()
    assert len(vector) == 4 * 4 - 2
    assert vector[:3] == [0.9, 0.5, 0.2]
    assert vector[-4:] == [0.0, 1.0, 2.0, 3.0]
    assert GenerationStrategy.from_vector(vector, steps=4) == s


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mask_ratios", [0.9, 0.5], "mask_ratios must have 3 values"),
        ("remask_temps", [1.0, 0.5, 0.1, 0.0], "remask_temps must have 3 values"),
        ("cfg_scales", [1.0, 1.0, 1.0], "cfg_scales must have 4 values"),
        ("mask_ratios", [0.9, 1.5, 0.2], "mask_ratios[1] must be in [0, 1], got 1.5"),
        ("mask_ratios", [0.9, -0.1, 0.2], "mask_ratios[1] must be in [0, 1], got -0.1"),
        ("remask_temps", [1.0, -1.0, 0.1], "remask_temps[1] must be >= 0"),
        ("sample_temps", [1.0, 1.0, -0.5, 1.0], "sample_temps[2] must be >= 0"),
        ("cfg_scales", [0.0, -2.0, 1.0, 1.0], "cfg_scales[1] must be >= 0"),
        ("sample_temps", [1.0, float("nan"), 1.0, 1.0], "sample_temps[1] must be finite"),
        ("cfg_scales", [0.0, 1.0, float("inf"), 1.0], "cfg_scales[2] must be finite"),
        ("remask_temps", [1.0, "x", 0.1], "remask_temps[1] must be a number"),
        ("mask_ratios", 0.5, "mask_ratios must be a list"),
    ],
)
def test_each_bad_field_is_rejected_by_name(field, value, message):
    kwargs = _valid()
    kwargs[field] = value
    with pytest.raises(ValueError) as error:
        GenerationStrategy(**kwargs)
    assert message in str(error.value)


def test_ratio_of_exactly_one_is_allowed():
    kwargs = _valid()
    kwargs["mask_ratios"] = [1.0, 0.5, 0.2]
    assert GenerationStrategy(**kwargs).mask_ratios[0] == 1.0


def test_reference_file_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("manual_ratios: [0.5]\nmanual_temp: [0.5]\nmanual_samp_temp: [1, 1]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: missing key 'manual_cfg'"):
        GenerationStrategy.load(bad)
    bad.write_text(
        "manual_ratios: [0.5]\nmanual_temp: [0.5]\nmanual_samp_temp: [1, 1]\n"
        "manual_cfg: [0, 1]\nextra: 1\n"
    )
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key 'extra'"):
        GenerationStrategy.load(bad)
    bad.write_text(
        "manual_ratios: [2.0]\nmanual_temp: [0.5]\nmanual_samp_temp: [1, 1]\nmanual_cfg: [0, 1]\n"
    )
    with pytest.raises(StrategyError, match=r"bad\.yaml: manual_ratios\[0\] must be in \[0, 1\]"):
        GenerationStrategy.load(bad)
    with pytest.raises(ValueError, match="strategy file not found"):
        GenerationStrategy.load(tmp_path / "missing.yaml")


def test_small_values_are_saved_as_floats_yaml_reads_back(tmp_path):
    kwargs = _valid()
    kwargs["cfg_scales"] = [2e-05, 1e-12, 3.0, 1e16][: len(kwargs["cfg_scales"])]
    strategy = GenerationStrategy(**kwargs)
    out = tmp_path / "small.yaml"
    strategy.save(out)
    assert "2.0e-05" in out.read_text()
    assert yaml.safe_load(out.read_text())["manual_cfg"][0] == 2e-05  # YAML 1.1 too
    assert GenerationStrategy.load(out) == strategy


def test_exponent_without_a_dot_is_read_as_a_number(tmp_path):
    path = tmp_path / "reference_style.yaml"
    path.write_text(
        "manual_ratios: [0.5]\nmanual_temp: [1e-3]\nmanual_samp_temp: [1, 1]\n"
        "manual_cfg: [2e-05, 1E+1]\n"
    )
    loaded = GenerationStrategy.load(path)
    assert loaded.remask_temps == (0.001,) and loaded.cfg_scales == (2e-05, 10.0)


def test_broken_yaml_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("manual_ratios: [0.5\nmanual_temp: [1.0]\n")
    with pytest.raises(StrategyError) as caught:
        GenerationStrategy.load(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:2:")
    assert "not valid YAML" in message
