"""The embedded default job, in a reduced run: a real study, real Ray actors, real files."""

import math

import yaml

from autonat_search.demo import run_demo


def test_reduced_demo_runs_end_to_end(ray_session, tmp_path):
    lines: list[str] = []
    result = run_demo(out=tmp_path, trials=4, cpu_actors=2, echo=lines.append)
    assert math.isfinite(result["initial"]) and math.isfinite(result["best"])
    (run_dir,) = tmp_path.glob("demo-*")
    exported = yaml.safe_load((run_dir / "best_strategy.yaml").read_text())
    assert sorted(exported) == ["manual_cfg", "manual_ratios", "manual_samp_temp", "manual_temp"]
    text = "\n".join(lines)
    assert "4 of 4 trials finished" in text
    assert "reference initial schedule: FID@1000" in text
    assert text.count("re-evaluated (seed 1)") >= 3  # the 3 best (the initial may be one)
