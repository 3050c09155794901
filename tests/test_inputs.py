"""Seeded input generators."""

import pytest
import torch

from lstm_viz import INPUTS, make_input


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_shape_dtype_and_seeding(kind):
    a = make_input(kind, 3, 20, 4, seed=1)
    assert a.shape == (3, 20, 4) and a.dtype == torch.float32
    assert torch.equal(a, make_input(kind, 3, 20, 4, seed=1))
    assert not torch.equal(a, make_input(kind, 3, 20, 4, seed=2))
    assert torch.isfinite(a).all()


def test_adding_input_has_one_marker_in_each_half():
    x = make_input("adding", 64, 30, 2, seed=0)
    markers = x[..., 1]
    assert torch.equal(markers.sum(dim=1), torch.full((64,), 2.0))
    assert torch.equal(markers[:, :15].sum(dim=1), torch.ones(64))
    assert (x[..., 0] >= 0).all() and (x[..., 0] < 1).all()


def test_uniform_and_gaussian_have_the_documented_ranges():
    u = make_input("uniform", 10, 100, 3)
    assert u.min() >= -1 and u.max() < 1
    g = make_input("gaussian", 10, 1000, 3)
    assert abs(g.mean()) < 0.05 and abs(g.std() - 1) < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("noise", 1, 5, 2), "input kind must be one of"),
        (("gaussian", 0, 5, 2), "batch_size must be an integer between 1"),
        (("gaussian", 1, 10_001, 2), "seq_len must be an integer between 1 and 10000"),
        (("adding", 1, 5, 1), "needs input_size >= 2"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        make_input(*args)
