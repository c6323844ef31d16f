"""Analysis: per-layer cycles and resources, network II, frames/s and latency at a clock.

``estimates.json`` (:func:`estimates`) and a readable table (:func:`table`).
"""

from __future__ import annotations

from qnnflow.flows.compile.latency import frame_latency, layer_latency
from qnnflow.flows.compile.resources import FAMILIES, KEYS, estimate
from qnnflow.flows.ir.layers import get_layer, hw_nodes
from qonnx.core.modelwrapper import ModelWrapper


def totals(model: ModelWrapper, family: str) -> dict[str, int]:
    out = dict.fromkeys(KEYS[family], 0)
    for n in hw_nodes(model):
        for k, v in estimate(get_layer(n), family).items():
            out[k] += v
    return out


def estimates(model: ModelWrapper, clock_mhz: float) -> dict:
    layers = []
    for n in hw_nodes(model):
        lay = get_layer(n)
        layers.append({
            "name": n.name,
            "op_type": n.op_type,
            "folding": lay.folding(),
            "cycles": lay.exp_cycles(),
            "pipeline_latency": layer_latency(lay, model),
            "in_width": lay.in_width,
            "out_width": lay.out_width,
            "resources": {f: estimate(lay, f) for f in FAMILIES},
        })  # fmt: skip
    ii = max((lay["cycles"] for lay in layers), default=0)
    latency = frame_latency(model)
    return {
        "clock_mhz": clock_mhz,
        "ii_cycles": ii,
        "fps": clock_mhz * 1e6 / ii if ii else None,
        "latency_cycles": latency,
        "latency_us": latency / clock_mhz if clock_mhz else None,
        "bottleneck": max(layers, key=lambda lay: lay["cycles"])["name"] if layers else None,
        "totals": {f: totals(model, f) for f in FAMILIES},
        "layers": layers,
        "note": "analytical estimates (flows/compile/resources.py), not synthesis results; latency is frame 0's "
        "first input beat to its last output beat by the beat model of flows/compile/latency.py (the modules' "
        "header latencies; backpressure not modelled)",
    }


def table(est: dict) -> str:
    """The estimates as a fixed-width text table."""
    head = (
        f"{'layer':<24}{'op':<16}{'folding':<18}{'cycles':>9}"
        f"{'LUT4':>8}{'DP16KD':>8}{'MULT18':>8}{'LUT6':>8}{'BRAM18':>8}{'DSP':>6}"
    )
    lines = [head, "-" * len(head)]
    for lay in est["layers"]:
        fold = " ".join(f"{k}={v}" for k, v in lay["folding"].items())
        e, x = lay["resources"]["ecp5"], lay["resources"]["xc7"]
        lines.append(
            f"{lay['name'][:23]:<24}{lay['op_type']:<16}{fold:<18}{lay['cycles']:>9}{e['LUT4']:>8}{e['DP16KD']:>8}"
            f"{e['MULT18X18D']:>8}{x['LUT6']:>8}{x['BRAM18']:>8}{x['DSP48']:>6}"
        )
    lines.append("-" * len(head))
    e, x = est["totals"]["ecp5"], est["totals"]["xc7"]
    lines.append(
        f"{'total':<58}{'':>9}{e['LUT4']:>8}{e['DP16KD']:>8}{e['MULT18X18D']:>8}{x['LUT6']:>8}"
        f"{x['BRAM18']:>8}{x['DSP48']:>6}"
    )
    fps = est["fps"]
    lines.append(
        f"II {est['ii_cycles']} cycles (bottleneck {est['bottleneck']}); at {est['clock_mhz']:g} MHz: "
        f"{fps:,.0f} frames/s, latency {est['latency_cycles']} cycles ({est['latency_us']:.1f} us)"
    )
    return "\n".join(lines)
