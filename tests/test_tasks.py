"""Long-range task generators: shapes, seeding, targets recomputed from inputs, baselines."""

import math

import pytest
import torch

from lstm_viz import tasks


def test_adding_shapes_markers_and_target():
    x, y = tasks.make_batch("adding", 32, 12, seed=3)
    assert x.shape == (32, 12, 2) and y.shape == (32,)
    assert x.dtype == torch.float32
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(dim=1), torch.full((32,), 2.0))
    first = markers[:, :6].argmax(dim=1)  # one marker in each half
    second = 6 + markers[:, 6:].argmax(dim=1)
    assert torch.equal(markers[:, :6].sum(dim=1), torch.ones(32))
    rows = torch.arange(32)
    torch.testing.assert_close(y, x[rows, first, 0] + x[rows, second, 0])
    assert bool((x[:, :, 0] >= 0).all() and (x[:, :, 0] < 1).all())


def test_copy_memory_layout_and_target():
    lag = 7
    x, y = tasks.make_batch("copy_memory", 16, lag, seed=1)
    length = lag + 20
    assert x.shape == (16, length, 10) and y.shape == (16, length) and y.dtype == torch.int64
    assert torch.equal(x.sum(dim=-1), torch.ones(16, length))  # one-hot
    seq = x.argmax(dim=-1)
    assert bool((seq[:, :10] < 8).all())
    assert bool((seq[:, 10 : lag + 9] == 8).all())  # T - 1 blanks
    assert bool((seq[:, lag + 9] == 9).all())  # the delimiter
    assert bool((seq[:, lag + 10 :] == 8).all())
    assert bool((y[:, : lag + 10] == 8).all())
    assert torch.equal(y[:, -10:], seq[:, :10])  # recall the symbols in order


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_seeding(name):
    a = tasks.make_batch(name, 8, 10, seed=5)
    b = tasks.make_batch(name, 8, 10, seed=5)
    c = tasks.make_batch(name, 8, 10, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_adding_baseline_is_the_mean_predictors_mse():
    task = tasks.get_task("adding")
    _, y = tasks.make_batch("adding", 4096, 20, seed=0)
    mse_of_mean = float(((y - 1.0) ** 2).mean())  # E[U1 + U2] = 1
    assert task.baseline(20) == pytest.approx(1 / 6)
    assert mse_of_mean == pytest.approx(1 / 6, abs=0.01)  # sd of the estimate is about 0.002


@pytest.mark.parametrize("lag", [5, 30])
def test_copy_baseline_is_the_best_memoryless_cross_entropy(lag):
    """Per-step marginal of the targets, used as the prediction, scores 10 ln 8 / (T + 20)."""
    task = tasks.get_task("copy_memory")
    _, y = tasks.make_batch("copy_memory", 4096, lag, seed=0)
    counts = torch.nn.functional.one_hot(y, 9).float().mean(dim=0)  # (T + 20, 9) marginals
    logits = torch.log(counts.clamp_min(1e-12)).expand(4096, -1, -1)
    ce = float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()))
    expected = 10 * math.log(8) / (lag + 20)
    assert task.baseline(lag) == pytest.approx(expected)
    assert ce == pytest.approx(expected, rel=0.01)


def test_accuracy_criteria():
    adding = tasks.get_task("adding")
    y = torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert adding.accuracy(torch.tensor([1.03, 0.95, 1.1, 1.0]), y) == pytest.approx(0.5)
    copy = tasks.get_task("copy_memory")
    _, y = tasks.make_batch("copy_memory", 4, 3, seed=0)
    perfect = torch.nn.functional.one_hot(y, 9).float()
    assert copy.accuracy(perfect, y) == 1.0


@pytest.mark.parametrize(
    ("name", "batch_size", "lag", "match"),
    [
        ("nope", 4, 10, "task must be one of"),
        ("adding", 4, 1, "lag for 'adding'"),
        ("copy_memory", 0, 10, "batch_size"),
        ("adding", 4, 10.5, "lag"),
    ],
)
def test_bad_arguments(name, batch_size, lag, match):
    with pytest.raises(ValueError, match=match):
        tasks.make_batch(name, batch_size, lag)


def test_tasks_name_whose_form_they_are():
    adding = tasks.get_task("adding").source
    assert "Le, Jaitly & Hinton" in adding and "0.5 + (X1 + X2)/4" in adding  # not H&S 1997's form
    _, y = tasks.make_batch("adding", 256, 10, seed=0)
    assert float(y.min()) >= 0 and float(y.max()) <= 2  # X1 + X2 of values in [0, 1]
    assert "Arjovsky" in tasks.get_task("copy_memory").source
