"""Boundary-aware calibration: the stopping rule, the greedy per-layer search, the candidates
Brevitas makes, and `qnnflow build --calibrate boundary` through compile on a tiny build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from qnnflow.models import calibrate as cal
from qnnflow.models.calibrate import Candidate, Search, Tolerances, choose
from qnnflow.models.train import load_checkpoint, train_and_export
from qnnflow.models.zoo import LayerBits, build_model
from torch import nn

from qnnflow import stamps
from qnnflow.cli import main
from qnnflow.config import BuildConfig, Calibration

TOL = Tolerances(jaccard=0.5, flip=0.01, accuracy=0.02)


def _cand(name_bits: int, cal_j: float, cal_f: float, test_j: float, cost: float | None) -> Candidate:
    bits = LayerBits.uniform("digits-cnn", name_bits, name_bits)
    m = lambda j, f: {"slice_jaccard_distance": j, "flip_rate": f, "flips": 0, "accuracy": 0.9, "accuracy_ref": 0.9}  # noqa: E731
    res = None if cost is None else {"LUT4": int(cost * 1000), "DP16KD": 1, "cost": cost}
    return Candidate(bits, "uniform", m(cal_j, cal_f), m(test_j, cal_f), res)


def test_rule_picks_the_cheapest_candidate_within_tolerance_on_calibration_data_only():
    cands = [
        _cand(8, 0.30, 0.000, 0.90, 8.0),
        _cand(6, 0.45, 0.005, 0.10, 6.0),  # the one: cheapest passing on calibration data
        _cand(5, 0.55, 0.000, 0.05, 5.0),  # fails the Jaccard tolerance on calibration, best held out
        _cand(4, 0.40, 0.020, 0.01, 4.0),  # fails the flip tolerance on calibration
        _cand(3, 0.90, 0.500, 0.90, None),  # fails both, never priced
    ]
    c = choose(cands, TOL.boundary_ok, "boundary")
    assert (c.candidate.name, c.passed) == ("w6a6", True)
    # a rule that looked at the held-out split would pick w4a4 or w5a5: the held-out numbers change nothing
    for other in cands:
        other.test["slice_jaccard_distance"] = 0.0
    assert choose(cands, TOL.boundary_ok, "boundary").candidate.name == "w6a6"
    # equal cost: the wider candidate wins
    tie = _cand(7, 0.10, 0.0, 0.1, 6.0)
    assert choose([*cands, tie], TOL.boundary_ok, "boundary").candidate.name == "w7a7"


def test_rule_without_a_passing_candidate_keeps_the_widest_and_says_so():
    cands = [_cand(8, 0.7, 0.0, 0.1, 8.0), _cand(4, 0.9, 0.0, 0.1, 4.0)]
    c = choose(cands, TOL.boundary_ok, "boundary")
    assert (c.candidate.name, c.passed) == ("w8a8", False)
    assert "no candidate passes" in c.why
    with pytest.raises(ValueError, match="need a resource estimate: w4a4"):
        choose([_cand(4, 0.1, 0.0, 0.1, None)], TOL.boundary_ok, "boundary")


def test_greedy_search_lowers_the_cheapest_knob_until_no_move_passes(monkeypatch):
    """A synthetic model of the world: boundary distance grows with what was taken from the
    first weight layer and the activations; cost is a weighted sum of the widths."""
    weight_cost, act_cost = (1.0, 5.0, 2.0), (3.0, 1.0)

    def fake_evaluate(self, bits, origin):
        if bits in self.seen:
            return self.seen[bits]
        lost = (8 - bits.weights[0]) * 0.2 + sum(8 - a for a in bits.acts) * 0.1 + (8 - bits.weights[1]) * 0.01
        m = {"slice_jaccard_distance": lost, "flip_rate": 0.0, "flips": 0, "accuracy": 1.0, "accuracy_ref": 1.0}
        cost = sum(c * b for c, b in zip(weight_cost, bits.weights, strict=True)) + sum(
            c * b for c, b in zip(act_cost, bits.acts, strict=True)
        )
        c = Candidate(bits, origin, m, m, {"LUT4": int(cost), "DP16KD": 0, "cost": cost})
        self.seen[bits] = c
        return c

    monkeypatch.setattr(Search, "evaluate", fake_evaluate)
    s = Search("digits-cnn", None, None, None, None, Tolerances(0.5, 0.0, 0.0), Path("."), lambda _m: None)
    path = s.greedy([8, 6, 4, 2])
    assert path[0]["name"] == "w8a8"
    # worked by hand: the second weight layer saves most per step and costs 0.02 a step (to 2 bits),
    # then the first activation (0.2 a step, twice), then the third weight layer (free, to 2 bits);
    # every further move would take the distance past 0.5
    assert [p["name"] for p in path] == ["w8a8", "w8.6.8a8.8", "w8.4.8a8.8", "w8.2.8a8.8", "w8.2.8a6.8",
                                         "w8.2.8a4.8", "w8.2.6a4.8", "w8.2.4a4.8", "w8.2.2a4.8"]
    costs = [p["cost"] for p in path]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) == len(costs)


def test_layer_bits_set_each_quantizer_and_are_checked():
    m = build_model("digits-cnn-w8a8", layer_bits=LayerBits((3, 5, 7), (4, 6)))
    w = [int(q.quant_weight().bit_width) for q in m if hasattr(q, "quant_weight")]
    a = [int(q.act_quant.bit_width()) for q in m if type(q).__name__ == "QuantReLU"]
    assert (w, a) == ([3, 5, 7], [4, 6])
    with pytest.raises(ValueError, match="3 weight layers and 2 activations"):
        build_model("digits-cnn-w8a8", layer_bits=LayerBits((3, 5), (4, 6)))
    with pytest.raises(ValueError, match="integers of 2..8 bits"):
        build_model("digits-cnn-w8a8", layer_bits=LayerBits((3, 5, 9), (4, 6)))
    with pytest.raises(ValueError, match="per-layer widths need one of the topologies"):
        build_model("digits-symcnn-w8a8", layer_bits=LayerBits((3,), (4,)))


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("calibrate") / "digits"
    train_and_export(BuildConfig(name="digits", preset="digits-cnn-w2a2", epochs=2), out)
    return out


def _conv_means(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Per-channel mean of each conv layer's output (before its batch norm), in float."""
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(torch.as_tensor(o).mean(dim=(0, 2, 3))))
             for m in model if isinstance(m, nn.Conv2d)]  # fmt: skip
    with torch.no_grad():
        model(torch.as_tensor(x))
    for h in hooks:
        h.remove()
    return [o.numpy() for o in outs]


def test_candidate_calibrates_activations_and_folds_the_bias_correction(tiny_build):
    from qnnflow.models.datasets import load_dataset

    split = load_dataset("digits")
    float_model = load_checkpoint(tiny_build / "float_model.pt")
    state = float_model.state_dict()
    bits = LayerBits((3, 3, 8), (8, 8))
    cfg = BuildConfig()
    plain = cal.make_candidate("digits-cnn", split, state, bits, cfg.replace(cal_bias_correction=False))
    corrected = cal.make_candidate("digits-cnn", split, state, bits, cfg)
    assert all(m.bias is None for m in corrected if isinstance(m, nn.Conv2d | nn.Linear))  # folded: no bias to export
    # the activation scales come from the calibration data (the init of a QuantReLU is 10 / 255)
    scales = [float(m.act_quant.scale().detach()) for m in corrected if type(m).__name__ == "QuantReLU"]
    assert all(abs(s - 10 / 255) > 1e-3 for s in scales), scales
    # weights are the float weights rounded on the 3-bit grid: scale max|W| / 3, levels -3..3
    conv = corrected[1]
    q = conv.quant_weight()
    ints = (q.value / q.scale).detach().numpy()
    assert np.array_equal(ints, np.round(ints)) and np.abs(ints).max() == 3
    s = float(state["1.weight"].abs().max()) / 3
    assert np.array_equal(np.round(ints), np.clip(np.round(state["1.weight"].numpy() / s), -3, 3))
    # the first conv sees the same quantized input in both models: after correction its per-channel
    # mean output error on the calibration set, moved into the batch norm, is gone
    f_mean = _conv_means(float_model, split.x_cal)[0]
    p_mean = _conv_means(plain, split.x_cal)[0]
    shift = state["2.running_mean"].numpy() - corrected[2].running_mean.numpy()
    assert np.abs(f_mean - p_mean).max() > 1e-3
    np.testing.assert_allclose(p_mean + shift, f_mean, atol=1e-4)
    assert np.array_equal(plain[2].running_mean.numpy(), state["2.running_mean"].numpy())


def test_build_calibrate_boundary_deploys_the_choice(tiny_build, tmp_path, capsys):
    out = tmp_path / "cal"
    import shutil

    shutil.copytree(tiny_build, out)
    cfg = BuildConfig(
        name="cal", preset="digits-cnn-w2a2", epochs=2, calibrate=Calibration.BOUNDARY, cal_max_bits=4,
        cal_min_bits=3, cal_grid=16, cal_jaccard_tol=1.0, cal_flip_tol=1.0, hw_map_grid=0, cal_mixed=False,
    )  # fmt: skip
    (tmp_path / "cal.toml").write_text(cfg.to_toml())
    assert main(["build", "--config", str(tmp_path / "cal.toml"), "--out", str(out), "--until", "compile"]) == 0
    text = capsys.readouterr().out
    rec = json.loads((out / "calibration" / "calibration.json").read_text())
    names = [c["name"] for c in rec["candidates"]]
    assert names == ["w4a4", "w3a3"]
    # everything passes tolerances of 1: the rule must take the cheapest priced candidate
    cheapest = min(rec["candidates"], key=lambda c: (c["resources"]["cost"], -sum(c["weights"] + c["acts"])))
    assert rec["choice"]["name"] == cheapest["name"] and rec["choice"]["passed"]
    assert f"deploying {cheapest['name']}" in text
    # compile read the calibrated model, and the checkpoint holds its widths
    assert stamps.read_stamp(out, "compile")["model"] == stamps.digest_path(out / "calibration" / "model.onnx")
    ck = torch.load(out / "calibration" / "model.pt", weights_only=False)
    assert ck["layer_bits"] == {"weights": cheapest["weights"], "acts": cheapest["acts"]}
    ver = json.loads((out / "verification.json").read_text())
    assert ver["model"] == str((out / "calibration" / "model.onnx").resolve())
    assert (out / "calibration" / "candidates.png").stat().st_size > 1000
    # a second run reuses the calibration
    assert main(["build", "--config", str(tmp_path / "cal.toml"), "--out", str(out), "--until", "compile"]) == 0
    assert "calibration is up to date" in capsys.readouterr().out


def _write_idx(path: Path, array: np.ndarray) -> None:
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_calibrate_boundary_on_fashion_mnist_idx_files(tmp_path, capsys):
    """Fashion-MNIST from IDX files in --data-dir (here small generated ones: a bright bar whose
    place is the class, on noise), through train and the calibration stage of a TFC."""
    rng = np.random.default_rng(0)

    def images(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 10
        x = rng.integers(0, 60, size=(n, 28, 28))
        for i, c in enumerate(y):
            x[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 250
        return x.astype(np.uint8), y.astype(np.uint8)

    data = tmp_path / "fashion"
    data.mkdir()
    (xt, yt), (xs, ys) = images(5_300), images(200)
    for stem, arr in (("train-images-idx3-ubyte", xt), ("train-labels-idx1-ubyte", yt),
                      ("t10k-images-idx3-ubyte", xs), ("t10k-labels-idx1-ubyte", ys)):  # fmt: skip
        _write_idx(data / f"{stem}.gz", arr)
    out = tmp_path / "tfc"
    args = ["build", "--preset", "tfc-w2a2", "--dataset", "fashion-mnist", "--data-dir", str(data), "--epochs", "2",
            "--calibrate", "boundary", "--out", str(out), "--until", "calibrate", "--cal-jaccard-tol", "1",
            "--cal-flip-tol", "1"]  # fmt: skip
    cfg = BuildConfig(cal_max_bits=3, cal_min_bits=2, cal_mixed=False, cal_grid=12, cal_accuracy_tol=1.0)
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert main([*args, "--config", str(tmp_path / "c.toml")]) == 0
    rec = json.loads((out / "calibration" / "calibration.json").read_text())
    assert [c["name"] for c in rec["candidates"]] == ["w3a3", "w2a2"]
    assert (rec["settings"]["jaccard_tol"], rec["settings"]["flip_tol"]) == (1.0, 1.0)  # the options won
    # a 3-bit TFC needs more of everything than a 2-bit one: the rule takes w2a2
    r3, r2 = (c["resources"] for c in rec["candidates"])
    assert r3["LUT4"] > r2["LUT4"] and rec["choice"]["name"] == "w2a2"
    assert rec["reference"]["test_accuracy"] > 0.5  # the bars are learnable: the float reference learned them
    assert "fashion-mnist" in capsys.readouterr().out


def test_candidate_options_learned_rounding_and_finetune(tiny_build):
    from qnnflow.models.boundary_rounding import RoundingConfig, learned_rounding
    from qnnflow.models.datasets import load_dataset

    split = load_dataset("digits")
    ref = load_checkpoint(tiny_build / "float_model.pt")
    cfg = BuildConfig(cal_rounding_steps=30, cal_rounding_mu=1.0)
    bits = LayerBits.uniform("digits-cnn", 3, 3)
    # learned rounding: the candidate's weights are exactly the rounded ones (the max-based scale of
    # the Brevitas quantizer finds the same grid again)
    rounded = cal._learned_rounding("digits-cnn", split, ref, [3], cfg, lambda _m: None)[bits]
    model = cal.make_candidate("digits-cnn", split, ref.state_dict(), bits, cfg, rounded)
    rq, _ = learned_rounding(ref, split.x_cal, RoundingConfig(bits=3, steps=30, margin_weight=1.0))
    for k in ("1.weight", "4.weight", "9.weight"):
        got = dict(model.named_modules())[k.split(".")[0]]
        np.testing.assert_array_equal(got.quant_weight().value.detach().numpy(), rq.state_dict()[k].numpy())
    # fine-tuning: one epoch of QAT lowers the training loss of a 2-bit candidate
    two = LayerBits.uniform("digits-cnn", 2, 2)
    x, y = torch.as_tensor(split.x_train), torch.as_tensor(split.y_train)

    def loss(m):
        with torch.no_grad():
            return float(nn.functional.cross_entropy(m.eval()(x), y))

    before = cal.make_candidate("digits-cnn", split, ref.state_dict(), two, BuildConfig())
    after = cal.make_candidate("digits-cnn", split, ref.state_dict(), two, BuildConfig(cal_finetune_epochs=1))
    assert loss(after) < loss(before)


def test_report_shows_the_calibration_only_for_the_model_compiled(tmp_path):
    from qnnflow.flows.implement.report import _calibration, _calibration_md, current_calibration

    cand = _cand(5, 0.4, 0.0, 0.45, 0.2).row(TOL)
    acc = _cand(4, 0.7, 0.0, 0.61, 0.1).row(TOL)
    rec = {
        "settings": {"widths": [5, 4], "mixed": False, "jaccard_tol": 0.5},
        "reference": {"test_accuracy": 0.98},
        "candidates": [cand, acc],
        "choice": {**cand, "why": "w5a5 is the cheapest of 1 of 2 candidates that pass", "passed": True},
        "accuracy_choice": {**acc, "why": "w4a4 ...", "passed": True},
    }
    for c in (*rec["candidates"], rec["choice"], rec["accuracy_choice"]):
        for split in ("cal", "test"):
            c[split]["median_boundary_shift"] = 0.01
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration" / "calibration.json").write_text(json.dumps(rec))
    (tmp_path / "calibration" / "model.onnx").write_bytes(b"chosen")
    assert current_calibration(tmp_path) is None  # nothing compiled yet
    stamps.write_stamp(tmp_path, "compile", {"model": stamps.digest_path(tmp_path / "calibration" / "model.onnx")})
    md = "\n".join(_calibration_md(_calibration(current_calibration(tmp_path))))
    assert "Deployed: **w5a5**" in md and "w5a5 is the cheapest" in md
    assert "accuracy rule, for comparison: w4a4; held-out accuracy 0.9000" in md
    assert md.count("\n| w5a5 | uniform | 0.9000 | 0 | 0.400 | yes |") == 1  # one table row per candidate
    assert md.count("\n| w4a4 | uniform | 0.9000 | 0 | 0.700 | no |") == 1
    (tmp_path / "calibration" / "model.onnx").write_bytes(b"another")  # compiled something else since
    assert current_calibration(tmp_path) is None


def test_calibrate_from_the_qat_weights_with_learned_rounding(tiny_build, tmp_path):
    import shutil

    out = tmp_path / "q"
    shutil.copytree(tiny_build, out)
    cfg = BuildConfig(calibrate=Calibration.BOUNDARY, cal_from="qat", cal_rounding_steps=5, cal_max_bits=3,
                      cal_min_bits=3, cal_mixed=False, cal_grid=12, cal_jaccard_tol=1.0, cal_flip_tol=1.0)  # fmt: skip
    rec = cal.calibrate(cfg, out, log=lambda _m: None)
    assert rec["from"] == "qat" and rec["settings"]["rounding_steps"] == 5
    chosen = load_checkpoint(out / "calibration" / "model.pt")
    # the deployed first conv holds the QAT weights rounded on the 3-bit grid (not the float twin's)
    qat_w = load_checkpoint(tiny_build / "model.pt").state_dict()["1.weight"]
    float_w = load_checkpoint(tiny_build / "float_model.pt").state_dict()["1.weight"]
    got = chosen[1].quant_weight().value.detach()
    step = float(qat_w.abs().max()) / 3
    assert float((got - qat_w).abs().max()) <= step + 1e-6  # within one grid step of the QAT weights
    assert not torch.allclose(qat_w, float_w)


def test_qat_with_per_layer_widths_exports_them(tmp_path):
    """``layer_bits`` trains each layer at its own width: the exported QONNX Quant nodes carry them."""
    from qonnx.core.modelwrapper import ModelWrapper

    cfg = BuildConfig(name="mixed", preset="digits-cnn-w8a8", layer_bits="w4.3.2a5.3", epochs=1)
    train_and_export(cfg, tmp_path, float_baseline=False)
    model = ModelWrapper(str(tmp_path / "model.onnx"))
    quant = [n for n in model.graph.node if n.op_type == "Quant"]
    weights = [int(model.get_initializer(n.input[3])) for n in quant if model.get_initializer(n.input[0]) is not None]
    acts = [int(model.get_initializer(n.input[3])) for n in quant if n.input[0].startswith("Relu")]
    assert (weights, acts) == ([4, 3, 2], [5, 3])
    reloaded = load_checkpoint(tmp_path / "model.pt")
    assert [int(q.quant_weight().bit_width) for q in reloaded if hasattr(q, "quant_weight")] == [4, 3, 2]
    with pytest.raises(ValueError, match="layer_bits are written"):
        BuildConfig(layer_bits="w4,3a2")
    with pytest.raises(ValueError, match="train with --method ste"):
        BuildConfig(layer_bits="w4.3.2a4.3", tv_iters=1)
