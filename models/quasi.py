"""The quasi neural network of a binary-weight network, its NTK, and generalization gaps.

After Zhang, Yin, Wang, "Why Quantization Improves Generalization: NTK of Binary Weight Neural
Networks" (arXiv 2206.05916). A binary weight b with P(b = +1) = (1 + w) / 2 has E[b] = w and
Var[b] = 1 - w^2. For a layer h = (1/sqrt d) sum_i b_i x_i whose inputs have mean m_i and variance
v_i (independent of the weights), the central limit theorem makes h about N(mu, s^2) with

    mu  = (1/sqrt d) sum_i w_i m_i,        s^2 = (1/d) sum_i ((1 - w_i^2) m_i^2 + v_i)

(for a fixed input, v = 0 and s^2 = (1/d) sum (1 - w^2) x^2, the paper's formula). The activation
becomes its expectation under that normal: erf(mu / (sqrt 2 s)) for sign, mu Phi(mu/s) + s phi(mu/s)
for ReLU; the propagated variance is E[a^2] - E[a]^2. The quasi network is a network of continuous
parameters w with a smooth activation.

:func:`run_analysis` (``qnnflow analyze quasi``) measures, on the 8x8 digits:

- (a) the quasi network's output against the mean of Monte-Carlo binary networks, over widths, with
  the Monte-Carlo standard error beside it;
- (b) the empirical NTK eigen-spectrum of the quasi network and of the real-weight ReLU network of the
  same shape, with exponential (log l = a - b i) and power-law (log l = a - b log i) fits and which fits
  better (the paper: quasi ~ exponential, like a Gaussian kernel; real ~ power law, like Laplace);
- (c) the generalization gap (train minus test accuracy) of binary-weight and real-weight MLPs over
  widths and seeds, and of Gaussian- and Laplace-kernel ridge regression as the reference pair.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

_SQRT2 = math.sqrt(2.0)
_EPS = 1e-12


# -- the quasi network ---------------------------------------------------------------------------


def _phi(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)


def _Phi(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(z / _SQRT2))


def quasi_linear(w: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of h = (1/sqrt d) B x, B binary with E[B] = w, x with mean m and variance v."""
    d = w.shape[1]
    mu = m @ w.T / math.sqrt(d)
    s2 = ((m**2) @ (1 - w**2).T + v.sum(dim=1, keepdim=True)) / d
    return mu, s2


def quasi_act(mu: torch.Tensor, s2: torch.Tensor, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    """E[a] and Var[a] of a = act(h), h ~ N(mu, s2), for act "sign" or "relu"."""
    s = torch.sqrt(s2 + _EPS)
    z = mu / s
    if act == "sign":
        mean = torch.erf(z / _SQRT2)
        return mean, torch.clamp(1 - mean**2, min=0.0)
    if act == "relu":
        mean = mu * _Phi(z) + s * _phi(z)
        second = (mu**2 + s2) * _Phi(z) + mu * s * _phi(z)
        return mean, torch.clamp(second - mean**2, min=0.0)
    raise ValueError(f"activation must be sign or relu, not {act!r}")


def quasi_forward(ws: list[torch.Tensor], x: torch.Tensor, act: str) -> torch.Tensor:
    """The quasi network's output mean: hidden layers with ``act``, a linear binary readout ``ws[-1]``."""
    m, v = x, torch.zeros_like(x)
    for w in ws[:-1]:
        mu, s2 = quasi_linear(w, m, v)
        m, v = quasi_act(mu, s2, act)
    return m @ ws[-1].T / math.sqrt(ws[-1].shape[1])


def sample_binary(w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(w.shape, generator=gen, dtype=w.dtype) < (1 + w) / 2, 1.0, -1.0).to(w.dtype)


def binary_forward(bs: list[torch.Tensor], x: torch.Tensor, act: str) -> torch.Tensor:
    """One binary network (weights ``bs`` in {-1, +1}) with the same scaling as the quasi network."""
    h = x
    for b in bs[:-1]:
        pre = h @ b.T / math.sqrt(b.shape[1])
        h = torch.sign(pre) if act == "sign" else torch.relu(pre)
    return h @ bs[-1].T / math.sqrt(bs[-1].shape[1])


def binary_forward_batch(bs: list[torch.Tensor], x: torch.Tensor, act: str) -> torch.Tensor:
    """:func:`binary_forward` of C networks at once: weights (C, out, in), result (C, N, outputs)."""
    h = x.expand(bs[0].shape[0], -1, -1)
    for b in bs[:-1]:
        pre = h @ b.transpose(1, 2) / math.sqrt(b.shape[2])
        h = torch.sign(pre) if act == "sign" else torch.relu(pre)
    return h @ bs[-1].transpose(1, 2) / math.sqrt(bs[-1].shape[2])


def latent_weights(dims: list[int], gen: torch.Generator) -> list[torch.Tensor]:
    """Latent weights uniform on [-1, 1] for layers dims[0] -> dims[1] -> ... -> dims[-1]."""
    return [torch.rand(o, i, generator=gen, dtype=torch.float64) * 2 - 1 for i, o in zip(dims, dims[1:], strict=False)]


def monte_carlo_error(x: torch.Tensor, width: int, act: str, samples: int, seed: int, depth: int = 2) -> dict:
    """Quasi output against the mean of ``samples`` binary networks drawn from the same latent weights."""
    gen = torch.Generator().manual_seed(seed)
    ws = latent_weights([x.shape[1]] + [width] * depth + [1], gen)
    quasi = quasi_forward(ws, x, act).squeeze(1)
    total = torch.zeros_like(quasi)
    total2 = torch.zeros_like(quasi)
    chunk = max(1, min(samples, 2**24 // max(w.numel() for w in ws)))  # networks drawn at once (<= 128 MB a layer)
    done = 0
    while done < samples:
        c = min(chunk, samples - done)
        out = binary_forward_batch([sample_binary(w.expand(c, -1, -1), gen) for w in ws], x, act)[:, :, 0]
        total += out.sum(0)
        total2 += (out**2).sum(0)
        done += c
    mean = total / samples
    std = torch.sqrt(torch.clamp(total2 / samples - mean**2, min=0.0))
    stderr = std / math.sqrt(samples)
    err = (mean - quasi).abs()
    # in units of the binary networks' output spread: the bias of the quasi approximation; the Monte-Carlo
    # mean alone is off by about sqrt(2/pi)/sqrt(samples) in these units (the noise floor)
    normalized = err / (std + _EPS)
    # E[(MC mean - quasi)^2] = bias^2 + std^2 / samples: the bias with the Monte-Carlo noise taken out
    bias2 = ((mean - quasi) ** 2 - std**2 / samples) / (std**2 + _EPS)
    return {
        "width": width,
        "activation": act,
        "samples": samples,
        "mean_abs_error": float(err.mean()),
        "normalized_error": float(normalized.mean()),
        "normalized_bias": math.sqrt(max(float(bias2.mean()), 0.0)),
        "resolution": 1 / math.sqrt(samples),  # the bias this many samples can resolve (one standard error)
        "noise_floor": math.sqrt(2 / math.pi) / math.sqrt(samples),
        "mean_mc_stderr": float(stderr.mean()),
        "error_over_stderr": float((err / (stderr + _EPS)).mean()),
        "output_std_across_inputs": float(mean.std()),
        "relative_error": float(err.mean() / (mean.abs().mean() + _EPS)),
    }


# -- NTK -----------------------------------------------------------------------------------------


def empirical_ntk(fn, params: list[torch.Tensor], x: torch.Tensor) -> np.ndarray:
    """Theta(x_a, x_b) = sum over parameters of d f(x_a)/d p * d f(x_b)/d p for a scalar output f."""
    rows = []
    for i in range(len(x)):
        out = fn(params, x[i : i + 1]).sum()
        grads = torch.autograd.grad(out, params)
        rows.append(torch.cat([g.flatten() for g in grads]).float())  # float32 rows: N x P fits in memory
    jac = torch.stack(rows)
    return (jac.double() @ jac.double().T).detach().numpy() if jac.numel() < 2**25 else (jac @ jac.T).double().numpy()


def decay_fits(eigs: np.ndarray, top: int) -> dict:
    """Least-squares fits of log(lambda_i / lambda_1) over i = 1..top (down to 1e-6 lambda_1): exponential
    (against i) and power law (against log i); R^2 of each on the log scale and which fits better."""
    lam = np.sort(np.asarray(eigs, dtype=np.float64))[::-1][:top]
    lam = lam[lam > lam[0] * 1e-6]  # above the float32 Jacobian's rounding floor
    i = np.arange(1, len(lam) + 1, dtype=np.float64)
    y = np.log(lam / lam[0])

    def fit(feature: np.ndarray) -> tuple[float, float, float]:
        slope, intercept = np.polyfit(feature, y, 1)
        resid = y - (slope * feature + intercept)
        r2 = 1 - float((resid**2).sum() / max(((y - y.mean()) ** 2).sum(), _EPS))
        return float(slope), float(intercept), r2

    es, ei, er2 = fit(i)
    ps, pi, pr2 = fit(np.log(i))
    return {
        "eigenvalues_used": len(lam),
        "exponential": {"rate": -es, "intercept": ei, "r2": er2},
        "power_law": {"exponent": -ps, "intercept": pi, "r2": pr2},
        "better_fit": "exponential" if er2 > pr2 else "power_law",
    }


def ntk_spectra(x: torch.Tensor, width: int, seed: int, top: int) -> tuple[dict, dict[str, np.ndarray]]:
    gen = torch.Generator().manual_seed(seed)
    dims = [x.shape[1], width, width, 1]
    # the quasi network's parameters are latent weights in (-1, 1); the real network's are N(0, 1)
    quasi_params = [w.clone().requires_grad_(True) for w in latent_weights(dims, gen)]
    real_params = [
        torch.randn(o, i, generator=gen, dtype=torch.float64).requires_grad_(True)
        for i, o in zip(dims, dims[1:], strict=False)
    ]
    spectra = {
        "quasi": np.linalg.eigvalsh(empirical_ntk(lambda p, xb: quasi_forward(p, xb, "relu"), quasi_params, x)),
        "real": np.linalg.eigvalsh(empirical_ntk(lambda p, xb: binary_forward(p, xb, "relu"), real_params, x)),
    }
    fits = {name: decay_fits(e, top) for name, e in spectra.items()}
    return fits, {k: np.sort(v)[::-1] for k, v in spectra.items()}


# -- generalization gaps -------------------------------------------------------------------------


class _MLP(nn.Module):
    """d -> width -> width -> 10 with NTK scaling; binary: weights sampled by stochastic rounding of
    latent w in [-1, 1] in training, sign(w) in evaluation."""

    def __init__(self, d: int, width: int, binary: bool):
        super().__init__()
        self.binary = binary
        dims = [d, width, width, 10]
        self.ws = nn.ParameterList(
            [
                nn.Parameter(torch.rand(o, i) * 2 - 1 if binary else torch.randn(o, i))
                for i, o in zip(dims, dims[1:], strict=False)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for k, w in enumerate(self.ws):
            if self.binary:
                b = sample_binary(w.detach(), self.gen) if self.training else torch.where(w >= 0, 1.0, -1.0)
                w = w + (b - w).detach()  # forward with b, gradient to the latent w (BinaryConnect)
            h = h @ w.T / math.sqrt(w.shape[1])
            if k < len(self.ws) - 1:
                h = torch.relu(h)
        return h


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_gap(xtr, ytr, xte, yte, width: int, binary: bool, seed: int, epochs: int) -> dict:
    torch.manual_seed(seed)
    model = _MLP(xtr.shape[1], width, binary)
    model.gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2 if binary else 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            if binary:
                with torch.no_grad():
                    for w in model.ws:
                        w.clamp_(-1.0, 1.0)
    train, test = _accuracy(model, xtr, ytr), _accuracy(model, xte, yte)
    return {"width": width, "binary": binary, "seed": seed, "train": train, "test": test, "gap": train - test}


def kernel_ridge_gap(xtr, ytr, xte, yte, kernel: str, ridge: float = 1e-3) -> dict:
    """Kernel ridge regression on one-hot targets, bandwidth the median pairwise training distance."""
    xtr, xte = np.asarray(xtr, np.float64), np.asarray(xte, np.float64)
    ytr, yte = np.asarray(ytr), np.asarray(yte)

    def dist(a, b):
        return np.sqrt(np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0))

    dtr = dist(xtr, xtr)
    sigma = float(np.median(dtr[dtr > 0]))

    def k(d):
        return np.exp(-(d**2) / (2 * sigma**2)) if kernel == "gaussian" else np.exp(-d / sigma)

    onehot = np.eye(int(ytr.max()) + 1)[ytr]
    alpha = np.linalg.solve(k(dtr) + ridge * np.eye(len(xtr)), onehot)
    train = float((np.argmax(k(dtr) @ alpha, 1) == ytr).mean())
    test = float((np.argmax(k(dist(xte, xtr)) @ alpha, 1) == yte).mean())
    return {"kernel": kernel, "bandwidth": sigma, "ridge": ridge, "train": train, "test": test, "gap": train - test}


# -- the command ---------------------------------------------------------------------------------


def _digits_features(data_dir=None):
    from qnnflow.models.datasets import load_dataset

    split = load_dataset("digits", data_dir)
    xtr = np.concatenate([split.x_train, split.x_cal]).reshape(-1, 64)
    ytr = np.concatenate([split.y_train, split.y_cal])
    xte, yte = split.x_test.reshape(-1, 64), split.y_test
    mean, std = xtr.mean(0), xtr.std(0) + 1e-6  # standardized features: sum w x has mean 0 at random w
    return (xtr - mean) / std, ytr, (xte - mean) / std, yte


def run_analysis(
    out: Path | str,
    widths: list[int] = (4, 16, 64, 256, 1024),
    seeds: int = 3,
    samples: int = 2000,
    epochs: int = 40,
    data_dir=None,
    ntk_inputs: int = 200,
    ntk_width: int | None = None,
    mc_inputs: int = 100,
    log=print,
) -> dict:
    """The three analyses; writes ``quasi.json`` and three PNG plots into ``out``."""
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive integers, not {widths}")
    if seeds < 1 or samples < 2 or epochs < 1:
        raise ValueError(f"seeds (>= 1), samples (>= 2) and epochs (>= 1) expected, found {seeds}, {samples}, {epochs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    xtr, ytr, xte, yte = _digits_features(data_dir)

    mc = _monte_carlo_study(torch.as_tensor(xte[:mc_inputs], dtype=torch.float64), widths, samples, log)
    ntk_w = ntk_width or min(max(widths), 512)  # the Jacobian is inputs x parameters
    fits, spectra = _ntk_study(torch.as_tensor(xtr[:ntk_inputs], dtype=torch.float64), ntk_w, log)
    gaps = _mlp_gaps(xtr, ytr, xte, yte, widths, seeds, epochs, log)
    kernels = _kernel_gaps(xtr, ytr, xte, yte, log)

    summary = _summary(mc, fits, gaps, kernels, widths)
    result = {
        "paper": "Zhang, Yin, Wang, Why Quantization Improves Generalization: NTK of Binary Weight Neural Networks "
        "(arXiv 2206.05916)",
        "data": f"8x8 digits, standardized; train {len(ytr)}, test {len(yte)}",
        "networks": "d -> width -> width -> 1 (10 for the gaps), NTK scaling 1/sqrt(fan_in), latent w ~ U(-1, 1)",
        "monte_carlo": mc,
        "ntk": {
            "width": ntk_w,
            "inputs": ntk_inputs,
            "fits": fits,
            "spectra": {k: v.tolist() for k, v in spectra.items()},
        },
        "generalization": {"mlp": gaps, "kernel_ridge": kernels, "epochs": epochs, "seeds": seeds},
        "summary": summary,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "quasi.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(out, mc, spectra, fits, gaps, kernels, widths, ntk_w)
    return result


def _monte_carlo_study(x: torch.Tensor, widths: list[int], samples: int, log) -> list[dict]:
    """(a) :func:`monte_carlo_error` for both activations at every width."""
    mc = []
    for act in ("sign", "relu"):
        for w in widths:
            # ``samples`` networks at the largest width, more at smaller ones (about the same cost each, up
            # to 64x): the resolution then follows the bias as it shrinks
            n = samples * min(64, max(1, max(widths) // w))
            row = monte_carlo_error(x, w, act, n, seed=0)
            mc.append(row)
            log(
                f"(a) {act:<4} width {w:>5}: quasi bias {row['normalized_bias']:.4f} output spreads "
                f"(|quasi - MC mean| {row['normalized_error']:.4f}, resolution {row['resolution']:.4f})"
            )
    return mc


def _ntk_study(x: torch.Tensor, width: int, log) -> tuple[dict, dict[str, np.ndarray]]:
    """(b) :func:`ntk_spectra` on the inputs ``x``, fitted over their first half (at least 10)."""
    fits, spectra = ntk_spectra(x, width, seed=0, top=max(10, len(x) // 2))
    for name, f in fits.items():
        log(
            f"(b) NTK {name:<5} width {width}: exponential R^2 {f['exponential']['r2']:.3f}, "
            f"power law R^2 {f['power_law']['r2']:.3f} -> {f['better_fit']}"
        )
    return fits, spectra


def _mlp_gaps(xtr, ytr, xte, yte, widths: list[int], seeds: int, epochs: int, log) -> list[dict]:
    """(c) :func:`train_gap` of binary- and real-weight MLPs at every width and seed."""
    xtr_t, ytr_t = torch.as_tensor(xtr, dtype=torch.float32), torch.as_tensor(ytr)
    xte_t, yte_t = torch.as_tensor(xte, dtype=torch.float32), torch.as_tensor(yte)
    gaps = []
    for w in widths:
        for binary in (True, False):
            for s in range(seeds):
                gaps.append(train_gap(xtr_t, ytr_t, xte_t, yte_t, w, binary, s, epochs))
            rows = [g for g in gaps if g["width"] == w and g["binary"] == binary]
            log(
                f"(c) {'binary' if binary else 'real':<6} width {w:>5}: gap {np.mean([r['gap'] for r in rows]):.4f} "
                f"+- {np.std([r['gap'] for r in rows]):.4f} (test {np.mean([r['test'] for r in rows]):.4f})"
            )
    return gaps


def _kernel_gaps(xtr, ytr, xte, yte, log) -> list[dict]:
    """(c) The reference pair: :func:`kernel_ridge_gap` with the Gaussian and the Laplace kernel."""
    kernels = [kernel_ridge_gap(xtr, ytr, xte, yte, k) for k in ("gaussian", "laplace")]
    for k in kernels:
        log(f"(c) kernel ridge {k['kernel']:<8}: train {k['train']:.4f} test {k['test']:.4f} gap {k['gap']:.4f}")
    return kernels


def _summary(mc, fits, gaps, kernels, widths) -> list[str]:
    lines = []
    for act in ("sign", "relu"):
        errs = [r["normalized_bias"] for r in mc if r["activation"] == act]
        falls = all(b <= a for a, b in zip(errs, errs[1:], strict=False))
        lines.append(
            f"(a) {act}: bias of the quasi network vs Monte-Carlo (in output spreads) {errs[0]:.4f} at width "
            f"{widths[0]} -> {errs[-1]:.4f} at {widths[-1]} "
            f"({'falls with width' if falls else 'does not fall monotonically'}; resolution {mc[0]['resolution']:.4f} "
            f"to {mc[len(widths) - 1]['resolution']:.4f})"
        )
    for name, f in fits.items():
        lines.append(f"(b) NTK of the {name} network decays more like a {f['better_fit'].replace('_', ' ')}")
    for w in widths:
        b = np.mean([g["gap"] for g in gaps if g["width"] == w and g["binary"]])
        r = np.mean([g["gap"] for g in gaps if g["width"] == w and not g["binary"]])
        lines.append(
            f"(c) width {w}: gap binary {b:.4f} vs real {r:.4f} ({'binary smaller' if b < r else 'real smaller'})"
        )
    kg = {k["kernel"]: k["gap"] for k in kernels}
    lines.append(f"(c) kernel ridge gap: gaussian {kg['gaussian']:.4f}, laplace {kg['laplace']:.4f}")
    return lines


def _plot(out: Path, mc, spectra, fits, gaps, kernels, widths, ntk_w) -> None:
    """One PNG per analysis (:mod:`qnnflow.models.quasi_plots`)."""
    from qnnflow.models import quasi_plots as plots

    plots.plot_mc_error(out / "quasi_mc_error.png", mc, widths)
    plots.plot_ntk_spectra(out / "quasi_ntk_spectra.png", spectra, fits, ntk_w)
    plots.plot_gaps(out / "quasi_gaps.png", gaps, kernels, widths)
