"""Search efficiency on the digits bundle (SPEC 8): images generated until each method reaches
the finite-difference baseline's best FID at the full sample count.

Protocol: every run starts from the reference's initial schedule only, with the same budget
of generated images; all methods of one seed share the search samples (common random
numbers: ``samples.seed`` = the run's seed); after every evaluation that changes a run's best
(lowest FID at the top rung), that strategy is re-evaluated on fresh sample seeds at the full
sample count (not counted as images: it is the same for every method). Methods: the
finite-difference search (the reference's defaults, and its gradient clipping at a value
chosen on a pilot run; the better of the two is the baseline), TPE, GP and CMA-ES, each in
the stick-breaking per-step space and the centred space, with the study's rungs and with the
top rung only. ``--full-count N`` keeps the fresh re-evaluations at N samples while every
search, the baseline's included, runs with its top rung below N (a lower search fidelity
for both sides). Everything runs in this process (or ``--jobs`` processes): the service's
objective and samplers on an in-memory Optuna study, no Ray, no database.

    python benchmarks/search_efficiency.py --out benchmarks/results/search_efficiency
    python benchmarks/search_efficiency.py --quick --out /tmp/se   # a smoke test

Outputs in ``--out``: ``evaluations.csv`` (one row per evaluation), ``best_fid.png`` and
``images_to_baseline.md`` (the table, also printed).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autonat_search import records  # noqa: E402
from autonat_search.config import (  # noqa: E402
    DEFAULT_RANGES,
    RANGE_KEYS,
    FidelityConfig,
    SamplerConfig,
    SamplesConfig,
    SpaceConfig,
    StudyConfig,
    load_study_config,
    parse_study_config,
)
from autonat_search.errors import ConfigError  # noqa: E402
from autonat_search.execution.evaluation import evaluate_chunks, sample_plan  # noqa: E402
from autonat_search.execution.objective import FidObjective  # noqa: E402
from autonat_search.samplers import build_study_sampler, study_pruner  # noqa: E402
from autonat_search.space import build_space, space_distributions  # noqa: E402
from nat_core.fid import fid_from_stats  # noqa: E402
from nat_core.pipeline import GeneratorBundle, load_bundle  # noqa: E402
from nat_core.seeding import derive_seed  # noqa: E402
from nat_core.strategy import GenerationStrategy  # noqa: E402

COLUMNS = (
    "method",
    "space",
    "rungs",
    "seed",
    "trial",
    "images_so_far",
    "rung",
    "fid_at_rung",
    "best_so_far_fresh_fid",
)
OPTUNA_METHODS = ("tpe", "gp", "cmaes")
SPACES = ("per-step", "centered")
PILOT_SEED = 100  # the pilot run's samples differ from every measured run's


@dataclass(frozen=True)
class Run:
    method: str  # tpe | gp | cmaes | fd | fd-clip=<value>
    space: str
    rungs: str  # "rungs" | "top-only", with "@<top rung>" when the search's top rung is
    # below the full count of the fresh re-evaluations (--full-count)
    seed: int
    budget: int  # images

    @property
    def label(self) -> str:
        return f"{self.method}/{self.space}/{self.rungs}"


def run_config(base: StudyConfig, run: Run) -> StudyConfig:
    fidelity = base.fidelity
    if run.rungs.startswith("top-only"):
        fidelity = replace(fidelity, rungs=(fidelity.rungs[-1],))
    if run.method.startswith("fd"):
        clip = float(run.method.split("=")[1]) if "=" in run.method else None
        sampler = SamplerConfig(name="finite-difference", seed=run.seed, grad_clip=clip)
    else:
        sampler = SamplerConfig(name=run.method, seed=run.seed)
    ranges = {k: base.space.ranges.get(k, DEFAULT_RANGES[k]) for k in RANGE_KEYS[run.space]}
    return replace(
        base,
        name=f"bench-{run.label}-{run.seed}",
        space=SpaceConfig(kind=run.space, ranges=ranges),
        sampler=sampler,
        fidelity=fidelity,
        samples=SamplesConfig(
            seed=run.seed,
            chunk=base.samples.chunk,
            batch_size=base.samples.batch_size,
            labels=base.samples.labels,
        ),
        warm_start=("reference-initial",),
    )


class FreshFid:
    """FID of a strategy at the full count on the fresh seeds, averaged; cached per strategy."""

    def __init__(
        self, bundle: GeneratorBundle, config: StudyConfig, seeds: list[int], count: int
    ) -> None:
        self.bundle, self.config, self.seeds, self.count = bundle, config, seeds, count
        self.cache: dict[tuple[float, ...], float] = {}

    def __call__(self, strategy: GenerationStrategy) -> float:
        key = tuple(strategy.to_vector())
        if key not in self.cache:
            fids = []
            for seed in self.seeds:
                plan = sample_plan(self.config, seed=seed)
                chunks = plan.chunks_between(0, self.count)
                stats = evaluate_chunks(self.bundle, strategy, chunks, plan)
                mu, sigma = self.bundle.reference_mu, self.bundle.reference_sigma
                fids.append(fid_from_stats(stats, mu, sigma))
            self.cache[key] = statistics.fmean(fids)
        return self.cache[key]


def run_search(
    bundle: GeneratorBundle, base: StudyConfig, run: Run, fresh_seeds: int, full_count: int
) -> list:
    config = run_config(base, run)
    space = build_space(config.space, steps=config.steps)
    sampler = build_study_sampler(config, search_space=space_distributions(space))  # as workers
    study = optuna.create_study(sampler=sampler, pruner=study_pruner(config))
    initial = GenerationStrategy.reference_initial(config.steps)
    params, deviation = space.params_for(initial)
    exact = initial if deviation == 0.0 else None
    study.enqueue_trial(params, user_attrs=records.enqueued_trial_attrs("reference-initial", exact))
    objective = FidObjective(bundle=bundle, space=space, config=config, device_name="cpu")
    seeds = [derive_seed(run.seed, "fresh", i, bits=31) for i in range(fresh_seeds)]
    fresh = FreshFid(bundle, config, seeds, full_count)
    rows, images, best_search, best_fresh, failures = [], 0, math.inf, math.nan, 0
    while images < run.budget:
        study.optimize(objective, n_trials=1, catch=(Exception,))
        trial = study.trials[-1]
        if not trial.intermediate_values:  # a failed evaluation generated nothing countable
            failures += 1
            if failures >= 5:
                reason = trial.user_attrs.get(records.TRIAL_FAIL_REASON)
                raise RuntimeError(f"{run.label}: 5 evaluations in a row failed: {reason}")
            continue
        failures = 0
        rung = max(trial.intermediate_values)
        images += rung
        fid = trial.intermediate_values[rung]
        if trial.state == optuna.trial.TrialState.COMPLETE and fid < best_search:
            best_search = fid
            best_fresh = fresh(records.require_strategy(trial))
        rows.append(
            dict(zip(COLUMNS, (run.method, run.space, run.rungs, run.seed, trial.number,
                               images, rung, fid, best_fresh), strict=True))
        )  # fmt: skip
    return rows


_WORKER: dict = {}


def _init_worker(bundle_path: str, threads: int) -> None:
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _WORKER["bundle"] = load_bundle(bundle_path)


def _run_one(args: tuple[StudyConfig, Run, int, int]) -> list:
    base, run, fresh_seeds, full_count = args
    started = time.perf_counter()
    rows = run_search(_WORKER["bundle"], base, run, fresh_seeds, full_count)
    print(
        f"  {run.label} seed {run.seed}: {len(rows)} evaluations, best fresh FID "
        f"{rows[-1]['best_so_far_fresh_fid']:.3f}, {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return rows


def run_all(
    base: StudyConfig,
    runs: list[Run],
    fresh_seeds: int,
    jobs: int,
    threads: int,
    csv_path: Path | None = None,
    full_count: int | None = None,
) -> list[list]:
    """Every run's rows, in the order of ``runs``; each run's rows are appended to
    ``csv_path`` as soon as it finishes, so an interrupted benchmark keeps what it measured.
    Fresh re-evaluations use ``full_count`` samples (default: the study's top rung)."""
    count = full_count or base.full_samples
    args = [(base, run, fresh_seeds, count) for run in runs]
    init = (str(base.bundle_path()), threads)

    def keep(rows: list) -> list:
        if csv_path is not None:
            with csv_path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=COLUMNS).writerows(rows)
        return rows

    if jobs == 1:
        _init_worker(*init)
        return [keep(_run_one(a)) for a in args]
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=init) as pool:
        futures = [pool.submit(_run_one, a) for a in args]
        for future in as_completed(futures):
            keep(future.result())
        return [f.result() for f in futures]


def final_best(rows: list) -> float:
    return rows[-1]["best_so_far_fresh_fid"] if rows else math.nan


def images_to_reach(rows: list, target: float) -> int | None:
    for row in rows:
        if row["best_so_far_fresh_fid"] <= target:
            return row["images_so_far"]
    return None


def by_label(results: list[list]) -> dict[str, list[list]]:
    out: dict[str, list[list]] = {}
    for rows in results:
        if rows:
            out.setdefault(f"{rows[0]['method']}/{rows[0]['space']}/{rows[0]['rungs']}", [])
            out[f"{rows[0]['method']}/{rows[0]['space']}/{rows[0]['rungs']}"].append(rows)
    return out


def table(results: list[list], baseline: str) -> str:
    groups = by_label(results)
    base_runs = groups[baseline]
    target = statistics.median(final_best(r) for r in base_runs)
    base_images = statistics.median(images_to_reach(r, target) or r[-1]["images_so_far"]
                                    for r in base_runs)  # fmt: skip
    lines = [
        f"Target: the baseline ({baseline})'s best fresh FID, median over seeds: {target:.3f}; "
        f"the baseline needed {base_images:.0f} images to reach it.",
        "",
        "| method/space/rungs | seeds reaching | images needed (median) | baseline/method "
        "| final best fresh FID (median) |",
        "|---|---|---|---|---|",
    ]
    for label, runs in sorted(groups.items()):
        needed = [images_to_reach(r, target) for r in runs]
        reached = [n for n in needed if n is not None]
        median = statistics.median(reached) if len(reached) * 2 > len(runs) else None
        ratio = f"{base_images / median:.1f}x" if median else "-"
        shown = f"{median:.0f}" if median else "not reached"
        best = statistics.median(final_best(r) for r in runs)
        lines.append(f"| {label} | {len(reached)}/{len(runs)} | {shown} | {ratio} | {best:.3f} |")
    return "\n".join(lines)


def plot(results: list[list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 5.5))
    styles = {"fd": ":", "tpe": "-", "gp": "--", "cmaes": "-."}
    for number, (label, runs) in enumerate(sorted(by_label(results).items())):
        grid = np.unique(np.concatenate([[r["images_so_far"] for r in rows] for rows in runs]))
        curves = []
        for rows in runs:
            xs = np.array([r["images_so_far"] for r in rows])
            ys = np.array([r["best_so_far_fresh_fid"] for r in rows], dtype=float)
            index = np.searchsorted(xs, grid, side="right") - 1
            curves.append(np.where(index >= 0, ys[np.clip(index, 0, None)], np.nan))
        stack = np.array(curves)
        line = ax.plot(
            grid,
            np.nanmedian(stack, axis=0),
            label=label,
            drawstyle="steps-post",
            color=plt.get_cmap("tab20")(number % 20),
            linestyle=styles.get(label.split("/")[0].split("-")[0], "-"),
        )
        if len(runs) > 1:
            ax.fill_between(grid, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0),
                            alpha=0.15, color=line[0].get_color(), step="post")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("images generated by the search")
    ax.set_ylabel("best-so-far FID, fresh seeds, full count")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def read_csv(path: Path) -> list[list]:
    """The runs of an evaluations CSV (e.g. an interrupted run's), rows typed as written."""
    runs: dict[tuple[str, ...], list] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            typed = dict(row)
            for key in ("seed", "trial", "images_so_far", "rung"):
                typed[key] = int(row[key])
            for key in ("fid_at_rung", "best_so_far_fresh_fid"):
                typed[key] = float(row[key])
            runs.setdefault((row["method"], row["space"], row["rungs"], row["seed"]), []).append(
                typed
            )
    return list(runs.values())


def read_csvs(paths: list[Path]) -> list[list]:
    """The runs of several CSVs; a run (method, space, rungs, seed) of a later file replaces
    the same run of an earlier one (e.g. the baseline re-run with a larger budget)."""
    runs: dict[tuple[str, ...], list] = {}
    for path in paths:
        for rows in read_csv(path):
            first = rows[0]
            runs[(first["method"], first["space"], first["rungs"], str(first["seed"]))] = rows
    return list(runs.values())


def report(results: list[list], out: Path) -> None:
    """The table (printed and in images_to_baseline.md) and the plot, from every run's rows."""
    groups = by_label(results)
    fd_labels = [label for label in groups if label.startswith("fd")]
    if fd_labels:
        baseline = min(
            fd_labels, key=lambda label: statistics.median(final_best(r) for r in groups[label])
        )
        text = table(results, baseline)
        (out / "images_to_baseline.md").write_text(text + "\n")
        print(text)
    try:
        plot(results, out / "best_fid.png")
    except ImportError:
        print("matplotlib is not installed: no plot", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", type=Path, default=ROOT / "studies" / "digits_demo.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search")
    parser.add_argument(
        "--study-rungs", default="", help="replace the study's rungs, e.g. 125,250,500"
    )
    parser.add_argument("--budget", type=int, default=64000, help="images per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default="fd,tpe,gp,cmaes")
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--rungs", default="rungs,top-only")
    parser.add_argument("--fd-clips", default="1,10,100", help="pilot values ('' for none)")
    parser.add_argument("--pilot-budget", type=int, default=None, help="default: the budget")
    parser.add_argument("--fd-clip", type=float, default=None, help="skip the pilot")
    parser.add_argument("--fresh-seeds", type=int, default=2)
    parser.add_argument(
        "--full-count",
        type=int,
        default=None,
        help="samples of the fresh re-evaluations (default: the top rung); a larger count "
        "makes every search run with the top rung below it, labelled rungs@<top>",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument(
        "--runs", default="", help="only these method/space/rungs labels, or fd, fd-clip"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny and fast")
    parser.add_argument(
        "--from-csv",
        type=Path,
        nargs="+",
        default=None,
        help="only the table and plot of these CSVs (a run in a later file replaces the same "
        "method/space/rungs/seed of an earlier one)",
    )
    args = parser.parse_args(argv)
    if args.from_csv is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report(read_csvs(args.from_csv), args.out)
        return 0
    base = load_study_config(args.study)
    if args.quick:
        base = replace(base, steps=3, fidelity=FidelityConfig(rungs=(50, 100), reduction_factor=2))
        args.budget, args.seeds, args.methods, args.fd_clips = 600, 1, "fd,tpe", "5"
        args.pilot_budget, args.fresh_seeds, args.jobs = 200, 1, 1
        args.spaces = "centered"
    if args.study_rungs:
        data = base.to_dict()
        data["fidelity"]["rungs"] = [int(n) for n in args.study_rungs.split(",")]
        base = parse_study_config(data, source_dir=base.source_dir)  # checks the rungs
    full_count = args.full_count or base.full_samples
    if full_count < base.full_samples:
        raise SystemExit(
            f"search_efficiency: --full-count {full_count} is below the top rung "
            f"{base.full_samples}"
        )
    lowered = f"@{base.full_samples}" if full_count > base.full_samples else ""
    methods = args.methods.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: list[Run] = []
    seeds = range(args.seeds)
    if "fd" in methods:
        clip = args.fd_clip
        clips = [float(c) for c in args.fd_clips.split(",") if c]
        if clip is None and clips:
            pilot_budget = args.pilot_budget or args.budget
            pilot = [
                Run(f"fd-clip={c:g}", "raw", "top-only" + lowered, PILOT_SEED, pilot_budget)
                for c in clips
            ]
            print(f"pilot: gradient clipping {clips} on {pilot_budget} images", flush=True)
            scores = run_all(
                base, pilot, args.fresh_seeds, args.jobs, args.threads, full_count=full_count
            )
            clip = clips[min(range(len(clips)), key=lambda i: final_best(scores[i]))]
            print(f"pilot chose grad_clip {clip:g}", flush=True)
        runs += [Run("fd", "raw", "top-only" + lowered, s, args.budget) for s in seeds]
        if clip is not None:
            runs += [
                Run(f"fd-clip={clip:g}", "raw", "top-only" + lowered, s, args.budget) for s in seeds
            ]
    for method in (m for m in methods if m in OPTUNA_METHODS):
        for space in args.spaces.split(","):
            for rungs in args.rungs.split(","):
                runs += [Run(method, space, rungs + lowered, s, args.budget) for s in seeds]
    if args.runs:  # in the order given; "fd" and "fd-clip" name the two baseline runs
        runs = [
            r
            for label in args.runs.split(",")
            for r in runs
            if label in (r.label, r.method, r.method.split("=")[0])
        ]
    print(f"{len(runs)} runs of {args.budget} images, {args.jobs} jobs", flush=True)
    csv_path = args.out / "evaluations.csv"
    with csv_path.open("w", newline="") as handle:
        csv.DictWriter(handle, fieldnames=COLUMNS).writeheader()
    results = run_all(base, runs, args.fresh_seeds, args.jobs, args.threads, csv_path, full_count)
    report(results, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as error:
        raise SystemExit(f"search_efficiency: {error}") from None
