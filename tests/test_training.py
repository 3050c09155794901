"""Training lab engine: it learns, records exactly the trained network, and its weights travel."""

import dataclasses
import io

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lstm_viz import build_model
from lstm_viz.loading import model_from_dict
from lstm_viz.tasks import make_batch
from lstm_viz.training import (
    GATE_BINS,
    TrainConfig,
    Trainer,
    record_trained,
    train,
)

TINY = dict(task="adding", lag=6, hidden_size=4, batch_size=8, test_size=16, probe_size=3, record_every=5)


def test_a_short_run_learns_the_easy_adding_problem():
    config = TrainConfig(
        task="adding",
        lag=4,
        hidden_size=8,
        archs=("lstm",),
        steps=150,
        batch_size=32,
        lr=1e-2,
        record_every=50,
        test_size=256,
        probe_size=4,
    )
    res = train(config)["lstm"]
    assert res.test_loss[0] > res.baseline  # an untrained readout is worse than guessing the mean
    assert res.test_loss[-1] < res.baseline / 2  # it found the marked values
    assert res.loss[-20:].mean() < res.loss[:20].mean()


def test_snapshot_shapes_and_histories():
    trainer = Trainer(TrainConfig(**TINY, archs=("rnn", "lstm", "gru"), steps=12))
    trainer.advance(100)
    results = trainer.results()
    assert list(results) == ["rnn", "lstm", "gru"]
    for arch, res in results.items():
        np.testing.assert_array_equal(res.snapshot_steps, [0, 5, 10, 12])  # and the last step
        np.testing.assert_array_equal(res.eval_steps, [0, 5, 10, 12])
        assert res.log10_grad_h.shape == (4, 3, 6)
        assert np.isfinite(res.log10_grad_h).all()
        assert res.loss.shape == res.grad_norm.shape == res.grad_norm_clipped.shape == (12,)
        assert res.steps_done == 12 and res.baseline == pytest.approx(1 / 6)
        if arch == "rnn":
            assert res.keep_gate_hist is None
        else:
            assert res.keep_gate_hist.shape == (4, len(GATE_BINS) - 1)
            np.testing.assert_allclose(res.keep_gate_hist.sum(axis=1), 1.0)
        assert res.snapshot_index(9) == 1 and res.snapshot_index(100) == 3


def test_models_see_the_same_batches_whatever_else_trains():
    alone = train(TrainConfig(**TINY, archs=("lstm",), steps=6))["lstm"]
    together = train(TrainConfig(**TINY, archs=("rnn", "lstm", "gru"), steps=6))["lstm"]
    np.testing.assert_array_equal(alone.loss, together.loss)
    np.testing.assert_array_equal(alone.log10_grad_h, together.log10_grad_h)


@pytest.mark.parametrize("clip", [0.05, None])
def test_gradient_norm_before_and_after_clipping(clip):
    res = train(TrainConfig(**TINY, archs=("rnn",), steps=10, clip=clip))["rnn"]
    if clip is None:
        np.testing.assert_allclose(res.grad_norm_clipped, res.grad_norm, rtol=1e-5)
    else:
        assert (res.grad_norm > clip).any()  # the threshold is low enough to bite
        np.testing.assert_allclose(res.grad_norm_clipped, np.minimum(res.grad_norm, clip), rtol=1e-4)


def test_snapshot_is_the_trained_network_against_autograd():
    """log10 ||dL/dh_t|| recorded from the trained weights equals autograd through nn.LSTM, at the
    last step (where the task loss enters) and at the first (every later step in between)."""
    trainer = Trainer(TrainConfig(**TINY, archs=("lstm",), steps=10, lr=0.05))
    trainer.advance(10)
    snap = trainer.results()["lstm"].log10_grad_h[-1]  # (probe, T)
    x, y = trainer.test_x[:3], trainer.test_y[:3]
    lstm = torch.nn.LSTM(2, 4, batch_first=True).double()
    lstm.load_state_dict(io_roundtrip(trainer.model_bytes("lstm")))
    readout = torch.nn.Linear(4, 1).double()
    readout.load_state_dict(trainer.checkpoint("lstm")["readout"])
    x = x.double()
    _, (h1, c1) = lstm(x[:, :1])  # the state after step 0, made a leaf
    h1 = h1.detach().requires_grad_(True)
    out, _ = lstm(x[:, 1:], (h1, c1.detach()))
    out.retain_grad()
    F.mse_loss(readout(out[:, -1]).squeeze(-1), y.double(), reduction="sum").backward()
    np.testing.assert_allclose(snap[:, -1], np.log10(out.grad[:, -1].norm(dim=-1).numpy()), atol=1e-4)
    np.testing.assert_allclose(snap[:, 0], np.log10(h1.grad[0].norm(dim=-1).numpy()), atol=1e-4)


def io_roundtrip(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True)


def test_state_dict_loads_into_torch_and_back():
    trainer = Trainer(TrainConfig(**TINY, archs=("rnn", "lstm", "gru"), steps=3))
    trainer.advance(3)
    x, _ = make_batch("adding", 2, 6, seed=9)
    for arch, cls in (("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        state = io_roundtrip(trainer.model_bytes(arch))
        assert set(state) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
        theirs = cls(2, 4, batch_first=True)
        theirs.load_state_dict(state)
        ours = build_model(arch, 2, 4)
        ours.load_state_dict(theirs.state_dict())
        inferred = model_from_dict(state).module  # what record_trained and uploads use
        assert isinstance(inferred, cls)
        expected, _ = trainer.runs[arch].recurrent(x)
        for model in (theirs, ours, inferred):
            torch.testing.assert_close(model(x)[0], expected)
        assert not torch.equal(state["weight_hh_l0"], build_model(arch, 2, 4).weight_hh_l0)  # it trained


def test_record_trained_uses_the_checkpoint():
    trainer = Trainer(TrainConfig(**TINY, archs=("lstm",), steps=5))
    trainer.advance(5)
    rec = record_trained(trainer.checkpoint("lstm"), batch_size=3, seed=1)
    assert rec.arch == "lstm" and rec.log10_grad_h.shape == (3, 6)
    assert "trained 5 steps" in rec.label
    np.testing.assert_array_equal(rec.weight_hh, trainer.state_dict("lstm")["weight_hh_l0"].numpy())


def test_copy_memory_trains_with_its_baseline():
    res = train(
        TrainConfig(
            task="copy_memory",
            lag=3,
            hidden_size=4,
            archs=("gru",),
            steps=4,
            batch_size=4,
            test_size=8,
            probe_size=2,
            record_every=2,
        )
    )["gru"]
    assert res.log10_grad_h.shape == (3, 2, 23) and res.baseline == pytest.approx(10 * np.log(8) / 23)
    assert res.test_loss[0] == pytest.approx(np.log(9), rel=0.2)  # about uniform over 9 classes


def test_callback_stops_training():
    seen = []
    results = train(
        TrainConfig(**TINY, archs=("rnn",), steps=100), lambda tr: seen.append(tr.step) or False, chunk=7
    )
    assert seen == [7] and results["rnn"].steps_done == 7


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"archs": ("lstm", "lstm")}, "archs"),
        ({"archs": ("transformer",)}, "archs"),
        ({"inits": {"rnn": "chrono"}}, "init for 'rnn'"),
        ({"lr": 0.0}, "lr"),
        ({"clip": -1.0}, "clip"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"task": "sorting"}, "task"),
        ({"probe_size": 99}, "probe_size"),
    ],
)
def test_bad_settings_say_what_is_allowed(change, match):
    with pytest.raises(ValueError, match=match):
        Trainer(TrainConfig(**{**TINY, **change}))


def test_figures_show_the_recorded_numbers():
    from lstm_viz import training_figures as tf

    results = train(TrainConfig(**TINY, archs=("rnn", "lstm"), steps=10))
    heat = tf.gradient_heatmap_figure(results, step=7)
    assert [tr.type for tr in heat.data] == ["heatmap", "heatmap"]
    np.testing.assert_allclose(heat.data[1].z, np.median(results["lstm"].log10_grad_h, axis=1), rtol=1e-6)
    assert heat.data[0].zmin == heat.data[1].zmin  # one colour scale for every model
    profile = tf.gradient_profile_figure(results, step=7)  # snapshots at 0, 5, 10: shows step 5
    assert [tr.name for tr in profile.data if tr.name and "at step" in tr.name] == [
        "RNN at step 5",
        "LSTM (forget bias) at step 5",
    ]
    assert not [tr for tr in profile.data if tr.legendgroup == "floors"]  # T = 8 stays far above them
    deep = {k: dataclasses.replace(r, log10_grad_h=r.log10_grad_h - 40) for k, r in results.items()}
    floors = [tr for tr in tf.gradient_profile_figure(deep, step=7).data if tr.legendgroup == "floors"]
    assert [tr.meta["floor"] for tr in floors] == ["float32"]  # autograd's zero line, drawn near the data
    gates = tf.keep_gate_figure(results, step=10)
    assert [tr.name for tr in gates.data][0] == "LSTM (forget bias) forget gate f_t, step 10"
    loss = tf.loss_figure(results)
    assert loss.layout.shapes[0].y0 == pytest.approx(1 / 6)
    norms = tf.grad_norm_figure(results, clip=1.0)
    np.testing.assert_allclose(norms.data[0].y, results["rnn"].grad_norm)


def test_pause_from_another_thread_stops_every_model_at_one_step():
    """A Streamlit rerun starts the new script run before the old one stops: the new run's Stop
    pauses the trainer while the old run is inside advance(). Every model must stop at the same
    step, with its snapshot there, and nothing may train after pause() returns."""
    import threading
    import time

    trainer = Trainer(
        TrainConfig(**{**TINY, "record_every": 1000}, archs=("rnn", "lstm", "gru"), steps=10_000)
    )
    old_run = threading.Thread(target=trainer.advance, args=(10_000,))
    old_run.start()
    while trainer.step < 3:
        time.sleep(0.005)
    step = trainer.pause()
    old_run.join(timeout=30)
    assert not old_run.is_alive() and trainer.step == step and 3 <= step < 10_000
    for res in trainer.results().values():
        assert res.steps_done == step and res.snapshot_steps[-1] == step and res.eval_steps[-1] == step
    assert trainer.advance(5) == 0 and trainer.step == step  # paused until resume()
    trainer.resume()
    assert trainer.advance(2) == 2 and trainer.step == step + 2


def test_two_inits_of_one_architecture_train_side_by_side():
    trainer = Trainer(TrainConfig(**TINY, archs=("rnn", "rnn_identity", "lstm_chrono", "lstm"), steps=3))
    assert trainer.runs["rnn"].instrumented.nonlinearity == "tanh"
    irnn = trainer.runs["rnn_identity"].instrumented  # Le et al. 2015: W_hh = I, relu
    assert irnn.nonlinearity == "relu"
    np.testing.assert_array_equal(irnn.weight_hh_l0.detach().numpy(), np.eye(4))
    trainer.advance(3)
    results = trainer.results()
    assert list(results) == ["rnn", "rnn_identity", "lstm_chrono", "lstm"]
    assert [r.label for r in results.values()] == [
        "RNN",
        "RNN (identity, relu)",
        "LSTM (chrono)",
        "LSTM (forget bias)",
    ]
    assert [r.arch for r in results.values()] == ["rnn", "rnn", "lstm", "lstm"]
    assert not np.array_equal(results["lstm_chrono"].loss, results["lstm"].loss)
    checkpoints = trainer.checkpoints()  # other pages inspect the first model of each architecture
    assert {a: c["label"] for a, c in checkpoints.items()} == {"rnn": "RNN", "lstm": "LSTM (chrono)"}
    rec = record_trained(trainer.checkpoint("rnn_identity"), batch_size=2)
    assert rec.arch == "rnn" and "relu" in rec.label


@pytest.mark.parametrize(
    ("archs", "match"),
    [
        (("lstm", "lstm_forget_bias"), "same model"),
        (("rnn_chrono",), "init for 'rnn'"),
        (("mlp_x",), "archs"),
    ],
)
def test_model_names_are_checked(archs, match):
    assert match in TrainConfig(**TINY, archs=archs).problem()
    assert TrainConfig(**TINY, archs=("lstm", "lstm_chrono")).problem() is None


def test_loss_chart_marks_the_shown_snapshot():
    from lstm_viz import training_figures as tf

    results = train(TrainConfig(**TINY, archs=("rnn", "rnn_identity"), steps=12))
    lines = [s for s in tf.loss_figure(results, step=9).layout.shapes if s.type == "line" and s.x0 == s.x1]
    assert [s.x0 for s in lines] == [5]  # the snapshot at or before step 9, as the other charts show
    assert tf.model_colors(results) == {"rnn": "#E15759", "rnn_identity": "#F28E2B"}


def test_presets_run_in_tiny_versions():
    from lstm_viz.presets import PRESETS

    for name, preset in PRESETS.items():
        assert preset.config.problem() is None, name
        config = preset.scaled(
            hidden_size=4, steps=3, batch_size=4, test_size=8, probe_size=2, record_every=2
        )
        results = train(config)
        assert list(results) == list(preset.config.archs)
        for res in results.values():
            assert res.steps_done == 3 and np.isfinite(res.test_loss).all()
            assert res.baseline == pytest.approx(
                1 / 6 if config.task == "adding" else 10 * np.log(8) / (config.lag + 20)
            )


def test_link_values_read_ids_and_old_labels():
    from lstm_viz.presets import follow_step, link_values, read_link

    assert read_link("Copy memory", ["LSTM", "GRU"]) == ("copy_memory", ["lstm", "gru"], [])
    assert read_link("copy_memory", ["lstm_chrono", "rnn_identity"])[1] == ["lstm_chrono", "rnn_identity"]
    assert read_link(None, None) == ("adding", ["rnn", "lstm", "gru"], [])
    task, models, dropped = read_link("sorting", ["", "lstm", "transformer"])
    assert (task, models) == ("adding", ["lstm"]) and len(dropped) == 2
    assert read_link(None, [""])[1] == []  # an empty value: no models
    assert link_values("adding", ["rnn", "lstm", "gru"]) == {}
    assert link_values("copy_memory", []) == {"train_task": "copy_memory", "train_archs": [""]}
    assert follow_step(5, 10, [0, 5, 10, 15]) == 5  # a chosen step stays
    assert follow_step(10, 10, [0, 5, 10, 15]) == 15  # the last step follows training
    assert follow_step(12, 10, [0, 5, 7]) == 7  # a step of an older run: the last one


def test_reproduce_papers_script_prints_a_row_per_model():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_papers.py"
    out = subprocess.run(
        [sys.executable, str(script), "--presets", "arjovsky_T100", "--steps", "2", "--test-size", "8"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("arjovsky_T100")]
    assert [row[20:42].strip() for row in rows] == ["RNN", "LSTM (forget bias)"]
    assert all(row.split()[-6] == "2" for row in rows)  # steps trained
    assert "Arjovsky, Shah & Bengio 2016" in out and "0.1733" in rows[0]  # the baseline 10 ln 8 / 120
