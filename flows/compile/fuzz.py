"""Seeded random QONNX graphs built from the ops the compiler takes, and the check that runs them.

:func:`random_case` builds one valid QONNX model with ``onnx.helper`` and qonnx's ``Quant`` /
``BipolarQuant`` (Brevitas' export form): an input quantizer (or an integer-annotated input, the
FINN-ONNX form), convolution blocks on small images (Conv on quantized weights, BatchNormalization,
Relu or hard tanh, sometimes a LeakyRelu, PRelu, Sigmoid, Tanh or HardSigmoid, an activation
quantizer, sometimes a depthwise Conv block after it, MaxPool or AveragePool, residual branches
joined by an Add), a Flatten, fully connected
blocks (MatMul or Gemm), sometimes a classifier head (Softmax, LogSoftmax, Sigmoid), and a tail of
logits, TopK or ArgMax.
Weights and activations are 1 to 8 bits, signed or unsigned, with per-tensor or per-channel scales.
The same seed always gives the same graph and the same inputs. :func:`~.fuzz_mutate.mutate` makes a
malformed (or oddly valid) variant of one; :mod:`.fuzz_forward` is the float64 forward pass the
generator calibrates its scales with.

:mod:`qnnflow.flows.compile.fuzz_check` runs the cases through the compiler. Used by
``tests/flows/test_fuzz.py``, ``tests/flows/test_malformed.py`` and the ``fuzz`` benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper
from qnnflow.flows.compile.fuzz_forward import forward
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

QONNX_DOMAIN = "qonnx.custom_op.general"


@dataclass
class FuzzCase:
    """One random graph: ``model`` (not yet cleaned), ``inputs`` (N, ...) as its input expects them,
    ``features`` (what the generator put in, for the counts and for reading a failure)."""

    seed: int
    model: ModelWrapper
    inputs: np.ndarray
    features: list[str] = field(default_factory=list)
    logits: bool = False  # compile in logits mode (the integer accumulators out, scale on the host)

    @property
    def summary(self) -> str:
        return f"seed {self.seed}: " + " ".join(self.features)


@dataclass
class _Spec:
    """What an activation quantizer produces: ``kind`` "int" or "bipolar", bits, signedness."""

    kind: str
    bits: int
    signed: bool


class _Graph:
    """The nodes and initializers of the graph being built, with readable unique names.

    ``vals`` holds the value of every tensor on the case's inputs (a plain numpy forward pass, used
    only to calibrate): BatchNorm statistics and activation scales are fitted to the values that
    reach them, as training would; random ones collapse most deep graphs to a constant output."""

    def __init__(self, rng: np.random.Generator, extra: np.random.Generator | None = None):
        self.rng = rng
        # draws for the patterns added later (monotonic activations, heads), from a stream of their own,
        # so that the graphs of earlier seeds keep their structure
        self.extra = extra if extra is not None else np.random.default_rng(0)
        # whether and how a depthwise block follows a conv block: a third stream (see _depthwise_block)
        self.depthwise = np.random.default_rng(2)
        self.nodes: list = []
        self.inits: list = []
        self.count: dict[str, int] = {}
        self.features: list[str] = []
        self.last = _Spec("int", 8, False)  # what the last quantizer produces
        self.vals: dict[str, np.ndarray] = {}

    def name(self, op: str) -> str:
        i = self.count.get(op, 0)
        self.count[op] = i + 1
        return f"{op}_{i}"

    def const(self, prefix: str, value) -> str:
        arr = np.asarray(value, dtype=np.float32)
        name = self.name(prefix)
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.ravel()))
        self.vals[name] = arr.astype(np.float64)
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:
        name = self.name(op)
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        self.vals[out] = forward(op, [self.vals[i] for i in inputs], attrs)
        return out

    # -- quantizers ---------------------------------------------------------------------------
    def scale(self, channels: int, shape: tuple[int, ...], per_channel: bool) -> np.ndarray:
        """Log-uniform weight scales, a power of two about half the time (as Brevitas' po2 scaling)."""
        n = channels if per_channel else 1
        if self.rng.random() < 0.5:
            s = 2.0 ** self.rng.integers(-6, 1, size=n)
        else:
            s = np.exp(self.rng.uniform(np.log(1 / 64), np.log(1.0), size=n))
        return s.reshape(shape) if per_channel else s.reshape(())

    def fit_scale(self, x: str, spec: _Spec, channels: int, shape: tuple[int, ...], per_channel: bool) -> np.ndarray:
        """An activation scale fitted to the values of ``x`` (the top level near their 95th
        percentile; one unsigned bit splits them at their median), times a random factor in 1/2..2,
        a power of two about half the time."""
        v = self.vals[x]
        if spec.kind == "bipolar":
            s = float(np.std(v)) or 1.0
        elif spec.signed:
            s = float(np.percentile(np.abs(v), 95)) / 2 ** (spec.bits - 1)
        elif spec.bits == 1:
            s = 2 * float(np.median(v))
        else:
            s = float(np.percentile(v, 95)) / (2**spec.bits - 1)
        s = s if s > 1e-6 else float(np.std(v)) or 1.0
        s *= 2.0 ** self.rng.uniform(-1, 1)
        if self.rng.random() < 0.5:
            s = 2.0 ** np.round(np.log2(s))
        if not per_channel:
            return np.asarray(s).reshape(())
        return (s * 2.0 ** self.rng.uniform(-0.5, 0.5, channels)).reshape(shape)

    def quant(self, x: str, spec: _Spec, scale: np.ndarray, narrow: bool = False) -> str:
        self.last = spec
        if spec.kind == "bipolar":
            return self.node("BipolarQuant", [x, self.const("scale", scale)], domain=QONNX_DOMAIN)
        ins = [x, self.const("scale", scale), self.const("zeropt", 0.0), self.const("bitwidth", float(spec.bits))]
        return self.node(
            "Quant", ins, domain=QONNX_DOMAIN, signed=int(spec.signed), narrow=int(narrow), rounding_mode="ROUND"
        )

    def weight(self, shape: tuple[int, ...], channel_axis: int, per_channel: float = 0.5) -> str:
        """A quantized weight tensor: 1 bit (BipolarQuant), ternary, or 2-8 bit signed integers, with
        per-channel scales with probability ``per_channel``."""
        bits = int(self.rng.integers(1, 9))
        per_channel = bool(self.rng.random() < per_channel)
        sshape = tuple(shape[i] if i == channel_axis else 1 for i in range(len(shape)))
        scale = self.scale(shape[channel_axis], sshape, per_channel)
        if bits == 1:
            self.features.append("w1")
            w = self.rng.normal(size=shape) * np.broadcast_to(scale, shape)
            return self.quant(self.const("W", w), _Spec("bipolar", 1, True), scale)
        narrow = bits == 2 or bool(self.rng.random() < 0.7)
        self.features.append(("wt" if bits == 2 and narrow else f"w{bits}") + ("pc" if per_channel else ""))
        top = 2 ** (bits - 1) - 1
        w = self.rng.uniform(-top - 0.5, top + 0.5, size=shape) * np.broadcast_to(scale, shape)
        return self.quant(self.const("W", w), _Spec("int", bits, True), scale, narrow=narrow)

    def act_spec(self) -> _Spec:
        r = self.rng.random()
        if r < 0.12:
            return _Spec("bipolar", 1, True)
        signed = bool(self.rng.random() < 0.4)
        bits = int(self.rng.integers(2 if signed else 1, 9))
        return _Spec("int", bits, signed)

    def activation(
        self,
        x: str,
        channels: int,
        shape: tuple[int, ...],
        spec: _Spec | None = None,
        scale: np.ndarray | None = None,
        after_linear: bool = True,
        per_tensor: bool = False,
    ) -> tuple[str, _Spec, np.ndarray]:
        """Optional BatchNormalization, Relu / hard tanh, then an activation quantizer (of ``spec`` and
        ``scale`` when given; per-channel scales rarely, since a linear layer takes only per-tensor ones;
        never with ``per_tensor``)."""
        spec = spec or self.act_spec()
        if self.rng.random() < 0.6:
            # a decreasing activation is taken only right after a MatMul / Conv (rows negated)
            x = self.batchnorm(x, channels, 0.15 if after_linear else 0.01)
        if spec.kind == "int" and not spec.signed and self.rng.random() < 0.6:
            x = self.node("Relu", [x])
            self.features.append("relu")
        elif spec.signed and self.rng.random() < 0.4:
            lim = float(np.percentile(np.abs(self.vals[x]), 90)) * self.rng.uniform(0.5, 1.5) or 1.0
            x = self.node("Clip", [x, self.const("min", -lim), self.const("max", lim)])
            self.features.append("hardtanh")
        if spec.kind == "int" and self.extra.random() < 0.25:
            x = self.monotonic(x, shape)
        if scale is None:
            per_channel = spec.kind == "int" and not per_tensor and bool(self.rng.random() < 0.05)
            scale = self.fit_scale(x, spec, channels, shape, per_channel)
        per_channel = np.size(scale) > 1
        self.features.append(_spec_name(spec) + ("pc" if per_channel else ""))
        return self.quant(x, spec, scale), spec, scale

    def monotonic(self, x: str, shape: tuple[int, ...]) -> str:
        """One of the monotonic activations the compiler folds into thresholds (third-party exports)."""
        kind = MONOTONIC[int(self.extra.integers(len(MONOTONIC)))]
        self.features.append(kind.lower())
        if kind == "LeakyRelu":
            return self.node(kind, [x], alpha=float(self.extra.uniform(0.01, 0.3)))
        if kind == "PRelu":
            channels = int(np.prod(shape)) if len(shape) else 1
            slope = self.extra.uniform(0.0, 0.5, channels).reshape(shape)
            return self.node(kind, [x, self.const("slope", slope)])
        if kind == "HardSigmoid":
            return self.node(kind, [x], alpha=float(self.extra.uniform(0.1, 0.5)), beta=0.5)
        return self.node(kind, [x])

    def batchnorm(self, x: str, channels: int, negative: float) -> str:
        """BatchNormalization with the statistics of ``x`` (perturbed); each channel's scale
        negative with probability ``negative``."""
        self.features.append("bn")
        r = self.rng
        v = self.vals[x]
        axes = tuple(i for i in range(v.ndim) if i != 1)
        mean, var = v.mean(axis=axes), v.var(axis=axes) + 1e-4
        gamma = r.uniform(0.3, 2.0, channels) * np.where(r.random(channels) < negative, -1, 1)
        ins = [
            x,
            self.const("bn_scale", gamma),
            self.const("bn_bias", r.normal(0, 0.3, channels) * np.abs(gamma)),
            self.const("bn_mean", mean + np.sqrt(var) * r.normal(0, 0.2, channels)),
            self.const("bn_var", var * r.uniform(0.5, 2.0, channels)),
        ]
        return self.node("BatchNormalization", ins, epsilon=1e-5)


MONOTONIC = ("LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid")
HEADS = ("Softmax", "LogSoftmax", "Sigmoid")


def _spec_name(spec: _Spec) -> str:
    if spec.kind == "bipolar":
        return "a1"
    return f"a{'i' if spec.signed else 'u'}{spec.bits}"


def random_case(seed: int, n_inputs: int = 20) -> FuzzCase:
    """The random graph of ``seed`` with ``n_inputs`` random inputs."""
    rng = np.random.default_rng(seed)
    g = _Graph(rng, np.random.default_rng([seed, 1]))
    g.depthwise = np.random.default_rng([seed, 2])
    image = bool(rng.random() < 0.65)
    if image:
        c, h = int(rng.integers(1, 4)), int(rng.integers(4, 9))
        w = h if rng.random() < 0.7 else int(rng.integers(4, 9))
        in_shape: tuple[int, ...] = (1, c, h, w)
    else:
        in_shape = (1, int(rng.integers(4, 25)))
    x, inputs, annotated = _input(g, in_shape, n_inputs)
    shape = list(in_shape)
    if image:
        for _ in range(int(rng.integers(1, 4))):
            x, shape = _conv_block(g, x, shape)
            if shape[2] * shape[3] * shape[1] <= 4 and rng.random() < 0.5:
                break
        x = g.node("Flatten", [x], axis=1) if rng.random() < 0.7 else _reshape(g, x, shape)
        g.features.append("flatten")
        shape = [1, int(np.prod(shape[1:]))]
    for _ in range(int(rng.integers(0, 3))):
        x, shape = _fc_block(g, x, shape)
    out_name, out_shape = _classifier(g, x, shape)
    graph = helper.make_graph(
        g.nodes,
        f"fuzz_{seed}",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(out_name, _out_type(g), out_shape)],
        initializer=g.inits,
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
    model = ModelWrapper(helper.make_model(graph, opset_imports=opsets))
    if annotated is not None:
        model.set_tensor_datatype("global_in", annotated)
    logits = g.features[-1] == "logits" and bool(rng.random() < 0.5)
    if logits:
        g.features.append("(logits mode)")
    return FuzzCase(seed, model, inputs, g.features, logits)


def _out_type(g: _Graph) -> int:
    return TensorProto.INT64 if g.nodes[-1].op_type in ("TopK", "ArgMax") else TensorProto.FLOAT


def _input(g: _Graph, shape: tuple[int, ...], n: int) -> tuple[str, np.ndarray, DataType | None]:
    """An input quantizer (float inputs) or an integer-annotated input (FINN-ONNX form)."""
    rng = g.rng
    full = (n, *shape[1:])
    if rng.random() < 0.25:
        signed = bool(rng.random() < 0.3)
        bits = int(rng.integers(2 if signed else 1, 9))
        dt = DataType[f"{'INT' if signed else 'UINT'}{bits}"]
        g.features.append(f"in-{dt.name.lower()}")
        x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=full).astype(np.float32)
        g.last = _Spec("int", bits, signed)
        g.vals["global_in"] = x.astype(np.float64)
        return "global_in", x, dt
    spec = g.act_spec()
    scale = g.scale(1, (), False)
    if spec.kind == "bipolar":
        lo, hi = -1.0, 1.0
    elif spec.signed:
        lo, hi = -(2 ** (spec.bits - 1)) * scale, (2 ** (spec.bits - 1) - 1) * scale
    else:
        lo, hi = 0.0, (2**spec.bits - 1) * scale
    span = float(hi - lo)
    x = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=full).astype(np.float32)
    g.vals["global_in"] = x.astype(np.float64)
    g.features.append("in-q" + _spec_name(spec)[1:])
    return g.quant("global_in", spec, scale), x, None


def _conv_block(g: _Graph, x: str, shape: list[int]) -> tuple[str, list[int]]:
    rng = g.rng
    _, c, h, w = shape
    k = int(rng.integers(1, min(3, h, w) + 1))
    stride = 2 if rng.random() < 0.2 and min(h, w) >= k + 2 else 1
    # zero padding needs a zero level: never (but now and then, for the error) on a bipolar input
    pad = k // 2 if rng.random() < (0.5 if g.last.kind == "int" else 0.03) else 0
    oc = int(rng.integers(2, 9))
    ins = [x, g.weight((oc, c, k, k), 0)]
    attrs = {"kernel_shape": [k, k], "strides": [stride, stride], "pads": [pad] * 4}
    if rng.random() < 0.2:
        spread = float(np.std(forward("Conv", [g.vals[i] for i in ins], attrs)))
        ins.append(g.const("bias", rng.normal(0, 0.3, oc) * spread))
        g.features.append("bias")
    x = g.node("Conv", ins, **attrs)
    g.features.append(f"conv{k}" + (f"s{stride}" if stride > 1 else "") + ("p" if pad else ""))
    h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    x, spec, scale = g.activation(x, oc, (1, oc, 1, 1))
    if g.depthwise.random() < 0.3:
        x, scale = _depthwise_block(g, x, oc, spec)
    if rng.random() < 0.3 and spec.kind == "int":
        x, spec = _residual_conv(g, x, oc, spec, scale)
    r = rng.random()
    if r < 0.3 and min(h, w) >= 2:
        x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        g.features.append("maxpool")
        h, w = h // 2, w // 2
    elif r < 0.45 and min(h, w) >= 2 and spec.kind == "int":
        x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        g.features.append("avgpool")
        h, w = h // 2, w // 2
    return x, [1, oc, h, w]


def _depthwise_block(g: _Graph, x: str, c: int, spec: _Spec) -> tuple[str, np.ndarray]:
    """A depthwise Conv (group = C) and an activation quantizer of the same kind as ``spec`` (the
    conv block's, so what follows is drawn as before), as a MobileNet block has after a conv.
    Every draw comes from the stream ``g.depthwise`` (``g.rng`` and ``g.extra`` point at it
    meanwhile) and the image keeps its size, so the rest of a seed's graph is the one it had before
    depthwise blocks were drawn (strides and other kernels: tests/flows/test_depthwise.py)."""
    main, extra = g.rng, g.extra
    g.rng = g.extra = g.depthwise
    try:
        # 1 x 1, or 3 x 3 padded to the same size: the image keeps its size, as later draws expect
        # (a bipolar stream has no zero to pad with: 3 x 3 on it only now and then, for the error)
        k = 3 if g.rng.random() < (0.6 if g.last.kind == "int" else 0.03) else 1
        wt = g.weight((c, 1, k, k), 0)
        x = g.node("Conv", [x, wt], kernel_shape=[k, k], strides=[1, 1], pads=[k // 2] * 4, group=c)
        g.features.append(f"dw{k}")
        # per-tensor scales, as the block's own activation mostly has: the next layer may mix channels
        x, _, scale = g.activation(x, c, (1, c, 1, 1), spec=spec, per_tensor=True)
        return x, scale
    finally:
        g.rng, g.extra = main, extra


def _residual_conv(g: _Graph, skip: str, c: int, spec: _Spec, scale: np.ndarray) -> tuple[str, _Spec]:
    """skip -> Conv(same size) -> activation quantizer, Add(skip, branch), then a quantizer."""
    k = int(g.rng.choice([1, 3]))
    w = g.weight((c, c, k, k), 0)
    y = g.node("Conv", [skip, w], kernel_shape=[k, k], strides=[1, 1], pads=[k // 2] * 4)
    return _residual_join(g, skip, y, c, (1, c, 1, 1), spec, scale)


def _residual_join(
    g: _Graph, skip: str, y: str, c: int, shape: tuple[int, ...], spec: _Spec, scale: np.ndarray
) -> tuple[str, _Spec]:
    """The branch ``y`` quantized like ``skip`` (the same scale, or one a power of two apart, as an
    integer-exact add needs; now and then an unrelated scale, which the compiler must refuse
    clearly), added to ``skip``, then quantized again."""
    r = g.rng.random()
    if r < 0.1:
        branch_scale = None
        g.features.append("residual-any")
    else:
        branch_scale = scale * (2.0 ** int(g.rng.integers(-1, 2)) if r < 0.4 else 1.0)
        g.features.append("residual")
    y, _, _ = g.activation(y, c, shape, spec=spec if g.rng.random() < 0.7 else None, scale=branch_scale)
    out, spec, _ = g.activation(g.node("Add", [skip, y]), c, shape, after_linear=False)
    return out, spec


def _reshape(g: _Graph, x: str, shape: list[int]) -> str:
    return g.node("Reshape", [x, _int_const(g, [1, int(np.prod(shape[1:]))])])


def _int_const(g: _Graph, values: list[int]) -> str:
    name = g.name("shape")
    g.inits.append(helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
    g.vals[name] = np.asarray(values)
    return name


def _linear(g: _Graph, x: str, n_in: int, n_out: int, per_channel: float = 0.5) -> str:
    rng = g.rng
    if rng.random() < 0.5:
        g.features.append("matmul")
        w = g.weight((n_in, n_out), 1, per_channel)
        return g.node("MatMul", [x, w])
    trans = bool(rng.random() < 0.6)
    ins = [x, g.weight((n_out, n_in), 0, per_channel) if trans else g.weight((n_in, n_out), 1, per_channel)]
    bias = bool(rng.random() < 0.3)
    if bias:
        spread = float(np.std(forward("Gemm", [g.vals[i] for i in ins], {"transB": int(trans)})))
        ins.append(g.const("bias", rng.normal(0, 0.3, n_out) * spread))
    g.features.append("gemm" + ("T" if trans else "") + ("+bias" if bias else ""))
    return g.node("Gemm", ins, transB=int(trans))


def _fc_block(g: _Graph, x: str, shape: list[int]) -> tuple[str, list[int]]:
    n = int(g.rng.integers(4, 33))
    x = _linear(g, x, shape[1], n)
    x, spec, scale = g.activation(x, n, (1, n))
    if g.rng.random() < 0.2 and spec.kind == "int":
        x, _ = _residual_join(g, x, _linear(g, x, n, n), n, (1, n), spec, scale)
    return x, [1, n]


def _classifier(g: _Graph, x: str, shape: list[int]) -> tuple[str, list[int]]:
    rng = g.rng
    classes = int(rng.integers(2, 11))
    # one scale for all classes, mostly: label selection needs it (per-channel: a clear refusal)
    x = _linear(g, x, shape[1], classes, per_channel=0.1)
    if rng.random() < 0.3:
        x = g.node("Mul", [x, g.const("out_scale", rng.uniform(0.1, 2.0))])
        g.features.append("mul")
    if rng.random() < 0.2:
        spread = float(np.std(g.vals[x])) or 1.0
        x = g.node("Add", [x, g.const("out_bias", rng.normal(0, 0.3, classes) * spread)])
        g.features.append("add")
    if g.extra.random() < 0.2:  # a classifier head, as QKeras / hls4ml exports end
        head = HEADS[int(g.extra.integers(len(HEADS)))]
        x = g.node(head, [x], **({} if head == "Sigmoid" else {"axis": -1}))
        g.features.append(f"head-{head.lower()}")
    r = rng.random()
    if r < 0.35:
        g.features.append("topk")
        k = _int_const(g, [1])
        name = g.name("TopK")
        g.nodes.append(helper.make_node("TopK", [x, k], [f"{name}_values", f"{name}_out"], name=name, axis=-1))
        return f"{name}_out", [1, 1]
    if r < 0.5:
        g.features.append("argmax")
        return g.node("ArgMax", [x], axis=-1, keepdims=1), [1, 1]
    g.features.append("logits")
    return x, [1, classes]
