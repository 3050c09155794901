"""The hand-stepped cells against PyTorch's own modules, and the named initialisations."""

import math

import pytest
import torch
from torch import nn

from lstm_viz import build_model
from lstm_viz.analysis import spectral_radius

TORCH_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CASES = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]


def reference(arch, kwargs, input_size=3, hidden_size=4):
    return TORCH_MODULES[arch](input_size, hidden_size, batch_first=True, **kwargs).double()


@pytest.mark.parametrize(("arch", "kwargs"), CASES)
def test_state_dict_matches_pytorch_keys_and_shapes(arch, kwargs):
    ours = build_model(arch, 3, 4, **kwargs).state_dict()
    theirs = reference(arch, kwargs).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize(("arch", "kwargs"), CASES)
def test_ours_loaded_into_pytorch_gives_the_same_outputs(arch, kwargs):
    ours = build_model(arch, 3, 4, seed=1, dtype=torch.float64, **kwargs)
    theirs = reference(arch, kwargs)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    out, state = ours(x)
    ref_out, ref_state = theirs(x)
    torch.testing.assert_close(out, ref_out)
    ref_state = ref_state if isinstance(ref_state, tuple) else (ref_state,)
    for mine, ref in zip(state, ref_state, strict=True):
        torch.testing.assert_close(mine, ref[0])


@pytest.mark.parametrize(("arch", "kwargs"), CASES)
def test_pytorch_loaded_into_ours_gives_the_same_outputs(arch, kwargs):
    torch.manual_seed(3)
    theirs = reference(arch, kwargs)
    ours = build_model(arch, 3, 4, dtype=torch.float64, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_fused_copy_has_identical_weights(arch):
    model = build_model(arch, 2, 5, seed=4)
    fused = model.fused()
    x = torch.randn(1, 6, 2)
    torch.testing.assert_close(model(x)[0], fused(x)[0], rtol=1e-5, atol=1e-6)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (build_model("lstm", 2, 3, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.weight_hh_l0, b.weight_hh_l0)
    assert not torch.equal(a.weight_hh_l0, c.weight_hh_l0)


def test_forget_bias_sets_the_effective_bias_not_each_half():
    model = build_model("lstm", 2, 5, init="forget_bias", forget_bias=1.0)
    forget = slice(5, 10)
    effective = model.bias_ih_l0[forget] + model.bias_hh_l0[forget]
    torch.testing.assert_close(effective, torch.ones(5))


def test_chrono_init_draws_forget_bias_from_log_uniform_and_negates_input_bias():
    t_max = 100
    model = build_model("lstm", 2, 64, init="chrono", t_max=t_max, seed=2)
    H = 64
    forget = (model.bias_ih_l0 + model.bias_hh_l0)[H : 2 * H]
    inputs = (model.bias_ih_l0 + model.bias_hh_l0)[:H]
    assert forget.min() >= 0 and forget.max() <= math.log(t_max - 1) + 1e-6
    assert forget.max() > math.log(t_max - 1) - 1.0  # the draws reach the top of the range
    torch.testing.assert_close(inputs, -forget)


@pytest.mark.parametrize("rho", [0.5, 1.0, 1.5])
def test_orthogonal_init_has_the_chosen_spectral_radius(rho):
    model = build_model("rnn", 2, 16, init="orthogonal", spectral_radius=rho)
    w = model.weight_hh_l0.detach().double()
    torch.testing.assert_close(w @ w.T, rho**2 * torch.eye(16, dtype=torch.float64), atol=1e-5, rtol=0)
    assert spectral_radius(w.numpy()) == pytest.approx(rho, rel=1e-5)


def test_identity_init_is_the_irnn():
    model = build_model("rnn", 2, 4, init="identity")
    assert model.nonlinearity == "relu"
    assert torch.equal(model.weight_hh_l0.detach(), torch.eye(4))
    assert not model.bias_ih_l0.any() and not model.bias_hh_l0.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "transformer"}, "arch must be one of"),
        ({"hidden_size": 0}, "hidden_size must be an integer between 1"),
        ({"hidden_size": 3.5}, "hidden_size must be an integer"),
        ({"input_size": -1}, "input_size must be an integer between 1"),
        ({"init": "identity", "arch": "lstm"}, "init for 'lstm' must be one of"),
        ({"arch": "rnn", "nonlinearity": "sigmoid"}, "nonlinearity must be 'tanh' or 'relu'"),
        ({"arch": "lstm", "nonlinearity": "relu"}, "nonlinearity applies to the 'rnn' only"),
        ({"init": "orthogonal", "spectral_radius": -1.0}, "spectral_radius must be"),
        ({"arch": "lstm", "init": "chrono", "t_max": 1}, "t_max must be an integer between 2"),
        ({"dtype": torch.float16}, "dtype must be"),
    ],
)
def test_bad_settings_raise_a_clear_value_error(kwargs, message):
    settings = {"arch": "rnn", "input_size": 2, "hidden_size": 3} | kwargs
    arch = settings.pop("arch")
    with pytest.raises(ValueError, match=message):
        build_model(arch, settings.pop("input_size"), settings.pop("hidden_size"), **settings)


DEEP = [(2, False), (3, False), (1, True), (2, True), (4, True)]


@pytest.mark.parametrize(("arch", "kwargs"), CASES)
@pytest.mark.parametrize(("num_layers", "bidirectional"), DEEP)
def test_stacked_models_load_both_ways_and_step_like_pytorch(arch, kwargs, num_layers, bidirectional):
    ours = build_model(arch, 3, 4, seed=1, num_layers=num_layers, bidirectional=bidirectional, **kwargs)
    torch.manual_seed(1)  # torch's own module built right after manual_seed draws the same weights
    theirs = TORCH_MODULES[arch](
        3, 4, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kwargs
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(torch.equal(theirs.state_dict()[k], v) for k, v in ours.state_dict().items())
    ours, theirs = ours.double(), theirs.double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    out, state = ours(x)
    ref_out, ref_state = theirs(x)
    torch.testing.assert_close(out, ref_out)
    ref_state = ref_state if isinstance(ref_state, tuple) else (ref_state,)
    for mine, ref in zip(state, ref_state, strict=True):
        torch.testing.assert_close(mine, ref)
    back = build_model(arch, 3, 4, seed=9, num_layers=num_layers, bidirectional=bidirectional, **kwargs)
    back.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(back.double()(x)[0], ref_out)
    torch.testing.assert_close(ours.fused()(x)[0], ref_out)


@pytest.mark.parametrize(
    ("arch", "init", "kwargs"),
    [
        ("lstm", "chrono", {"t_max": 100}),
        ("gru", "chrono", {"t_max": 100}),
        ("lstm", "forget_bias", {"forget_bias": 2.0}),
        ("rnn", "orthogonal", {"spectral_radius": 0.8}),
        ("rnn", "identity", {"spectral_radius": 1.2}),
    ],
)
def test_every_init_applies_to_every_layer_and_direction(arch, init, kwargs):
    model = build_model(arch, 3, 8, seed=0, init=init, num_layers=3, bidirectional=True, **kwargs)
    H = 8
    biases = []
    for layer in range(3):
        for direction in (0, 1):
            one = model.layer(layer, direction)
            assert one.input_size == (3 if layer == 0 else 16)
            bias = (one.bias_ih_l0 + one.bias_hh_l0).detach()
            w = one.weight_hh_l0.detach().double()
            if init == "chrono":
                assert bias[H : 2 * H].min() >= 0 and bias[H : 2 * H].max() <= math.log(99) + 1e-6
            elif init == "forget_bias":
                torch.testing.assert_close(bias[H : 2 * H], torch.full((H,), 2.0))
            elif init == "orthogonal":
                torch.testing.assert_close(
                    w @ w.T, 0.64 * torch.eye(H, dtype=torch.float64), atol=1e-5, rtol=0
                )
            else:
                assert torch.equal(one.weight_hh_l0.detach(), 1.2 * torch.eye(H)) and not bias.any()
                assert one.nonlinearity == "relu"
            biases.append(bias)
    if init == "chrono":  # each layer and direction draws its own
        assert not torch.equal(biases[0], biases[1]) and not torch.equal(biases[0], biases[2])


def test_one_layer_models_stay_the_hand_stepped_kind():
    model = build_model("lstm", 2, 3, num_layers=1, bidirectional=False)
    assert type(model).__name__ == "LSTM" and list(model.state_dict()) == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_layers": 0}, "num_layers must be an integer between 1 and 4, got 0"),
        ({"num_layers": 5}, "num_layers must be an integer between 1 and 4, got 5"),
        ({"bidirectional": 1}, "bidirectional must be True or False"),
    ],
)
def test_bad_depth_settings_raise_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model("lstm", 2, 3, **kwargs)
    with pytest.raises(ValueError, match=r"layers 0 to 1 and directions 0 to 0, got \(2, 0\)"):
        build_model("lstm", 2, 3, num_layers=2).layer(2, 0)
