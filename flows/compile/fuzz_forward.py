"""The value of each node of a generated fuzz graph (:mod:`qnnflow.flows.compile.fuzz`) in float64
numpy, for calibrating its scales only: the compiler is checked against QONNX execution, never
against this."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _per_channel(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return c.reshape((1, -1) + (1,) * (x.ndim - 2))


def _quant(x, ins, attrs):
    s, z, bits = ins[1], ins[2], int(ins[3])
    narrow = attrs.get("narrow", 0)
    lo, hi = (-(2 ** (bits - 1)) + narrow, 2 ** (bits - 1) - 1) if attrs["signed"] else (0, 2**bits - 1 - narrow)
    return (np.clip(np.round(x / s + z), lo, hi) - z) * s


def _conv(x, ins, attrs):
    w = ins[1]
    k, (st, _), p = w.shape[-1], attrs["strides"], attrs["pads"][0]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::st, ::st]
    if attrs.get("group", 1) > 1:  # depthwise: channel c by its own kernel
        y = np.einsum("nchwij,cij->nchw", win, w[:, 0])
    else:
        y = np.einsum("nchwij,ocij->nohw", win, w)
    return y + ins[2].reshape(1, -1, 1, 1) if len(ins) > 2 else y


def _gemm(x, ins, attrs):
    y = x @ (ins[1].T if attrs.get("transB") else ins[1])
    return y + ins[2] if len(ins) > 2 else y


def _batchnorm(x, ins, attrs):
    gamma, beta, mean, var = (_per_channel(x, c) for c in ins[1:])
    return (x - mean) / np.sqrt(var + attrs["epsilon"]) * gamma + beta


def _softmax(x, log: bool):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    sm = e / e.sum(axis=-1, keepdims=True)
    return np.log(sm) if log else sm


def _pool(x, op: str):
    n, c, h, w = x.shape
    blocks = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    return blocks.max(axis=(3, 5)) if op == "MaxPool" else blocks.mean(axis=(3, 5))


# op -> f(x, inputs, attributes)
_OPS: dict[str, Callable] = {
    "Quant": _quant,
    "BipolarQuant": lambda x, ins, a: np.where(x >= 0, 1.0, -1.0) * ins[1],
    "Conv": _conv,
    "MatMul": lambda x, ins, a: x @ ins[1],
    "Gemm": _gemm,
    "BatchNormalization": _batchnorm,
    "Relu": lambda x, ins, a: np.maximum(x, 0),
    "LeakyRelu": lambda x, ins, a: np.where(x < 0, a["alpha"] * x, x),
    "PRelu": lambda x, ins, a: np.where(x < 0, ins[1] * x, x),
    "Sigmoid": lambda x, ins, a: np.exp(-np.logaddexp(0.0, -x)),  # 1 / (1 + e^-x), no overflow
    "Tanh": lambda x, ins, a: np.tanh(x),
    "HardSigmoid": lambda x, ins, a: np.clip(a["alpha"] * x + a["beta"], 0, 1),
    "Softmax": lambda x, ins, a: _softmax(x, log=False),
    "LogSoftmax": lambda x, ins, a: _softmax(x, log=True),
    "Clip": lambda x, ins, a: np.clip(x, ins[1], ins[2]),
    "MaxPool": lambda x, ins, a: _pool(x, "MaxPool"),
    "AveragePool": lambda x, ins, a: _pool(x, "AveragePool"),
    "Add": lambda x, ins, a: x + ins[1],
    "Mul": lambda x, ins, a: x * ins[1],
    "Flatten": lambda x, ins, a: x.reshape(len(x), -1),
    "Reshape": lambda x, ins, a: x.reshape(len(x), -1),
    "ArgMax": lambda x, ins, a: np.argmax(x, axis=-1)[:, None].astype(np.float64),
}


def forward(op: str, ins: list[np.ndarray], attrs: dict) -> np.ndarray:
    """The value of one node ``op`` on its input values ``ins`` with attributes ``attrs``."""
    if op not in _OPS:
        raise ValueError(f"the fuzz generator has no forward pass for {op}")
    return _OPS[op](ins[0], ins, attrs)
