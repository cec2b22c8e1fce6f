"""The digits as grey levels and their fixed, stratified split."""

import numpy as np
import pytest

from nat_core.digits.data import load_digit_levels, split_digits


def test_split_is_deterministic_disjoint_complete_and_stratified():
    a, b = split_digits(), split_digits()
    np.testing.assert_array_equal(a.train_index, b.train_index)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    assert np.intersect1d(a.train_index, a.test_index).size == 0
    levels, labels = load_digit_levels()
    assert len(a.train_index) + len(a.test_index) == len(labels) == 1797
    assert len(a.test_index) == 360
    np.testing.assert_array_equal(a.train_levels, levels[a.train_index])
    np.testing.assert_array_equal(a.test_labels, labels[a.test_index])
    assert set(np.bincount(a.test_labels, minlength=10)) <= {35, 36, 37}
    other = split_digits(seed=1)
    assert not np.array_equal(other.test_index, a.test_index)


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="held_out_fraction.*1.5"):
        split_digits(held_out_fraction=1.5)
