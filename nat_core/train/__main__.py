"""``python -m nat_core.train``: pretraining and tokenizing without the search service.

    python -m nat_core.train [-v] pretrain CONFIG.yaml [--dataset D] [--out-dir O] [--max-steps N]
                                                   [--device DEV] [--no-resume]
    python -m nat_core.train tokenize IMAGES_DIR -o OUT.npy --bundle B.yaml [--size S]
                                                   [--batch-size N] [--flip | --no-flip]
                                                   [--device DEV]
    torchrun --nproc_per_node=8 -m nat_core.train pretrain CONFIG.yaml

Bad input is reported as one line ``error: ...`` with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nat_core.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)

    pretrain = commands.add_parser(
        "pretrain", help="the reference's pretraining (config in its layout); DDP under torchrun"
    )
    pretrain.add_argument("config", type=Path, help="training config (.yaml)")
    pretrain.add_argument("--dataset", type=Path, help="token dataset (.npy); overrides "
                          "dataset.path")
    pretrain.add_argument("--out-dir", type=Path, help="run folder; default train.out_dir")
    pretrain.add_argument("--max-steps", type=int, help="stop at this step")
    pretrain.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if any)")
    pretrain.add_argument("--no-resume", dest="resume", action="store_false",
                          help="refuse an out-dir that holds checkpoints instead of resuming")

    tokenize = commands.add_parser(
        "tokenize", help="images in class folders -> token dataset (label then L codes per row)"
    )
    tokenize.add_argument("images_dir", type=Path, help="one folder of images per class")
    tokenize.add_argument("-o", "--output", type=Path, required=True, help="token dataset (.npy)")
    tokenize.add_argument("--bundle", type=Path, required=True,
                          help="bundle whose tokenizer encodes the images")
    tokenize.add_argument("--size", type=int, help="centre-crop size (default: the bundle's "
                          "image size)")
    tokenize.add_argument("--batch-size", type=int, default=64, help="images per batch")
    tokenize.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                          help="add horizontally flipped copies (default: yes, except with "
                          "a tokenizer that declines them, such as the digits' pixels)")
    tokenize.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if any)")
    return parser


def _pretrain(args: argparse.Namespace) -> str:
    from nat_core.train.loop import pretrain

    ema = pretrain(args.config, dataset_path=args.dataset, out_dir=args.out_dir,
                   resume=args.resume, device=args.device, max_steps=args.max_steps)
    return f"EMA weights -> {ema}"


def _tokenize(args: argparse.Namespace) -> str:
    from nat_core.data import write_token_dataset
    from nat_core.train.tokenize import tokenize_with_bundle

    rows = tokenize_with_bundle(args.images_dir, args.bundle, size=args.size,
                                batch_size=args.batch_size, flip=args.flip,
                                device=args.device, progress=True)
    write_token_dataset(args.output, rows)
    return f"{len(rows)} rows of {rows.shape[1] - 1} tokens -> {args.output}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = _pretrain if args.command == "pretrain" else _tokenize
    try:
        print(run(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
