import numpy as np
import pytest
import torch
from qnnflow.models.symmetric import RESIDUAL_TOPOLOGIES
from qnnflow.models.zoo import TOPOLOGIES, build_model, parse_preset


def _weight_layers(model):
    return [m for m in model.modules() if hasattr(m, "quant_weight")]


# Every topology at several widths; CNV (1.5 M parameters) at fewer, as it uses the same factories.
_WIDTHS = ["w1a1", "w1a2", "wta2", "w2a2", "w4a4", "w8a8", "float"]
_PRESETS = [
    f"{t}-{wa}"
    for t in sorted(TOPOLOGIES)
    for wa in _WIDTHS
    if (t != "cnv" or wa in ("w1a1", "w2a2", "float")) and (t not in RESIDUAL_TOPOLOGIES or not wa.endswith("a1"))
]
# weight layers: the residual CNNs have a stem, 8 convolutions or transposed ones in 4 blocks, a growth
# conv and the classifier
_WEIGHT_LAYERS = {"digits-cnn": 3, "cnv": 9, **{t: 11 for t in RESIDUAL_TOPOLOGIES}}


@pytest.mark.parametrize("name", _PRESETS)
def test_every_preset_builds_and_runs(name):
    preset = parse_preset(name)
    topology = preset.topology
    model = build_model(preset).eval()
    out = model(torch.rand(2, *preset.input_shape))
    assert out.shape == (2, 10)
    assert len(_weight_layers(model)) == (0 if preset.is_float else _WEIGHT_LAYERS.get(topology, 4))


@pytest.mark.parametrize(
    "wa, max_levels, max_abs, must_have_zero",
    [("w1a1", 2, 1, False), ("wta2", 3, 1, True), ("w2a2", 3, 1, True), ("w3a3", 7, 3, True), ("w4a4", 15, 7, True)],
)
def test_weight_quantizers_have_the_documented_levels(wa, max_levels, max_abs, must_have_zero):
    torch.manual_seed(0)
    model = build_model(f"tfc-{wa}")
    for layer in _weight_layers(model):
        qw = layer.quant_weight()
        ints = (qw.value / qw.scale).detach().numpy()
        assert np.allclose(ints, np.round(ints), atol=1e-4)
        levels = np.unique(np.round(ints))
        assert len(levels) <= max_levels
        assert np.abs(levels).max() <= max_abs  # narrow range: symmetric, no -2^(b-1)
        assert (0 in levels) == must_have_zero


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_activation_quantizers(bits):
    model = build_model(f"tfc-w2a{bits}").eval()
    act = model[4]  # input quant, flatten, linear, BN, act
    y = act(torch.linspace(-3, 3, 101)[None, :]).detach().numpy()
    levels = np.unique(y)
    if bits == 1:
        assert set(np.sign(levels)) == {-1.0, 1.0} and len(levels) == 2  # bipolar
    else:
        assert levels.min() == 0 and len(levels) <= 2**bits  # unsigned


def test_input_quantizer_is_exact_for_digits():
    model = build_model("digits-cnn-w2a2").eval()
    x = torch.arange(17, dtype=torch.float32).reshape(1, 1, 17)[:, :, :16].reshape(1, 1, 4, 4) / 16
    assert torch.equal(model[0](x), x)  # values k/16, k = 0..16, pass unchanged


@pytest.mark.parametrize("name", ["resnet-w2a2", "digits-cnn-w9a2", "digits-cnn-w2a0", "tfc", "cnv-wxa2"])
def test_unknown_preset_error(name):
    with pytest.raises(ValueError, match=rf"unknown preset '{name}': expected <topology>-w<W>a<A>"):
        parse_preset(name)
