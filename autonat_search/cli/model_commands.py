"""Model-side commands (pretrain, tokenize, fid-stats, build-digits-demo): thin wrappers over
``nat_core`` (``python -m nat_core.train`` runs the first two without the service)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from autonat_search.cli.options import DeviceOpt
from autonat_search.errors import ConfigError

__all__ = ["build_digits_demo", "fid_stats", "pretrain", "tokenize"]


@contextmanager
def _input_errors() -> Iterator[None]:
    """nat_core's dataset, image-folder and training-config readers report bad input as
    plain ValueErrors (no types of their own yet): here, around those calls only, they are
    the user's errors. ``--debug`` still shows where each came from."""
    try:
        yield
    except ValueError as error:
        raise ConfigError(str(error)) from error


def pretrain(
    config_file: Annotated[Path, typer.Argument(help="Pretraining config (reference layout).")],
    dataset: Annotated[
        Path | None, typer.Option(help="Token dataset (.npy); overrides dataset.path.")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Run folder; default train.out_dir.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint.")] = True,
    max_steps: Annotated[int | None, typer.Option(help="Stop at this step.")] = None,
    device: DeviceOpt = None,
) -> None:
    """The reference's pretraining (config in its layout); under torchrun: DDP on every GPU.

    torchrun --nproc_per_node=8 -m nat_core.train pretrain CONFIG.yaml
    """
    from nat_core.train import pretrain as run_pretraining

    with _input_errors():
        ema = run_pretraining(
            config_file,
            dataset_path=dataset,
            out_dir=out_dir,
            resume=resume,
            device=device,
            max_steps=max_steps,
            progress=True,
        )
    typer.echo(f"EMA weights -> {ema}")


def tokenize(
    images_dir: Annotated[Path, typer.Argument(help="Folder of images, one folder per class.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Token dataset (.npy).")],
    bundle: Annotated[Path, typer.Option(help="Bundle whose tokenizer encodes the images.")],
    size: Annotated[
        int | None, typer.Option(help="Centre-crop size (default: the bundle's image size).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    flip: Annotated[
        bool | None,
        typer.Option(
            help="Add horizontally flipped copies (default: yes, except with the digits' pixel "
            "tokenizer: digits are not mirror-symmetric)."
        ),
    ] = None,
    device: DeviceOpt = None,
) -> None:
    """Images in class folders -> token dataset (label then L codes per row, int64)."""
    from nat_core.data import write_token_dataset
    from nat_core.train import tokenize_with_bundle

    with _input_errors():
        rows = tokenize_with_bundle(
            images_dir,
            bundle,
            size=size,
            batch_size=batch_size,
            flip=flip,
            device=device,
            progress=True,
        )
        write_token_dataset(output, rows)
    typer.echo(f"{len(rows)} rows of {rows.shape[1] - 1} tokens -> {output}")


def fid_stats(
    images: Annotated[Path, typer.Argument(help="Folder of images, or an .npz of images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Statistics (.npz).")],
    bundle: Annotated[
        Path | None, typer.Option(help="Take the feature extractor of this bundle.")
    ] = None,
    inception_weights: Annotated[
        Path | None, typer.Option(help="Or: pytorch-fid's pt_inception-2015-12-05-6726825d.pth.")
    ] = None,
    size: Annotated[int, typer.Option(help="Centre-crop size, as the reference.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 50,
    device: DeviceOpt = None,
) -> None:
    """Reference statistics (mu, sigma) of a folder of images or an .npz of images."""
    import torch

    from nat_core.bundle import build_component, read_bundle
    from nat_core.fid import InceptionFeatures, save_reference_stats, stats_from_images
    from nat_core.image_folder import count_images, iter_image_batches

    if bundle is not None and inception_weights is None:
        extractor = build_component(read_bundle(bundle).features, "features")
    elif inception_weights is not None and bundle is None:
        extractor = InceptionFeatures(weights_path=inception_weights)
    else:
        raise ConfigError("give exactly one of --bundle and --inception-weights")
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _input_errors():
        stats = stats_from_images(
            iter_image_batches(images, batch_size=batch_size, size=size),
            extractor.to(dev),
            device=dev,
            progress=True,
            total=count_images(images),
        )
    save_reference_stats(output, stats.mean(), stats.covariance())
    typer.echo(f"statistics of {stats.count} images ({stats.dim}-d) -> {output}")


def build_digits_demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the bundle.")] = Path(
        "bundles"
    ),
    quick: Annotated[bool, typer.Option(help="A reduced, fast build (for tests).")] = False,
) -> None:
    """Regenerate the digits-demo bundle from scratch (classifier, NAT, statistics)."""
    from nat_core.digits.build import build_digits_demo as build

    path = build(output, quick=quick, progress=True)
    typer.echo(f"digits-demo bundle -> {path}")
