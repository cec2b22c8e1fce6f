"""The one seed-derivation function: independent, reproducible seeds from a tuple of parts.

Every seed the project derives (training's data order, masking and dropout streams, the
common-random-number streams of an evaluation, each search worker's sampler) goes through
``derive_seed``, so "which seed does this draw use" has one answer.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["derive_seed"]


def _entropy(part: int | str, position: int) -> int:
    if isinstance(part, bool) or not isinstance(part, int | str):
        raise ValueError(f"seed part {position} must be an int or a str, got {part!r}")
    if isinstance(part, str):
        # A label: its 64-bit BLAKE2b digest.
        return int.from_bytes(hashlib.blake2b(part.encode(), digest_size=8).digest(), "little")
    if part < 0:
        raise ValueError(f"seed part {position} must be >= 0, got {part}")
    return part


def derive_seed(*parts: int | str, bits: int = 63) -> int:
    """A well-mixed ``bits``-bit seed from non-negative ints and string labels.

    The parts are mixed by NumPy's ``SeedSequence`` (stable across NumPy versions): the
    first 64-bit word of its state, shifted right to ``bits`` bits. Equal parts give equal
    seeds; any change in any part gives an unrelated seed. ``bits=63`` suits
    ``torch.Generator.manual_seed``; ``bits=32`` suits NumPy's legacy ``RandomState``."""
    if not parts:
        raise ValueError("derive_seed needs at least one part")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ValueError(f"bits must be an integer in [1, 64], got {bits!r}")
    words = [_entropy(part, i) for i, part in enumerate(parts)]
    state = np.random.SeedSequence(words).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(64 - bits))
