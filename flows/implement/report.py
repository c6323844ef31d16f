"""The build report: ``report.json`` and ``report.md`` in the build folder.

Gathers what the stages measured: utilization against the device's totals and Fmax per clock
domain (``impl/<board>/impl.json`` from :mod:`qnnflow.flows.implement`), throughput and latency at
the clock the board runs (cycles per frame measured in simulation when there is ``sim/results.json``,
else the compiler's estimate), the UART link's own frame rate, the software and hardware accuracy
(``sim/results.json``), and the xc7z020 estimate (``impl/xc7z020/estimate.json``) when present.
"""

from __future__ import annotations

import json
from pathlib import Path

from qnnflow import stamps
from qnnflow.config import Board
from qnnflow.link import LinkFormat

# nextpnr cell types -> report names, in report order
_ECP5 = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "DP16KD": "BRAM (DP16KD)", "MULT18X18D": "DSP (MULT18X18D)"}
_ICE40 = {"ICESTORM_LC": "LC (LUT4+FF)", "ICESTORM_RAM": "BRAM (EBR)", "ICESTORM_SPRAM": "SPRAM",
          "ICESTORM_DSP": "DSP (SB_MAC16)"}
_GOWIN = {"LUT4": "LUT4", "ALU": "ALU (carry LUT)", "DFF": "FF", "BSRAM": "BSRAM", "RAM16SDP4": "LUTRAM (RAM16SDP4)",
          "MULT18X18": "DSP (MULT18X18)", "MULT9X9": "DSP (MULT9X9)"}
_FAMILY_CELLS = {"ecp5": _ECP5, "ice40": _ICE40, "gowin": _GOWIN}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def build_report(build_dir: Path | str, board: Board | str) -> dict:
    """The report of ``build_dir`` for ``board`` as a dict (see :func:`write_report`)."""
    build_dir = Path(build_dir)
    board_name = board.value if isinstance(board, Board) else board
    impl = _load(build_dir / "impl" / board_name / "impl.json")
    if impl is None:
        raise FileNotFoundError(f"no implementation results in {build_dir / 'impl' / board_name}: "
                                f"run `qnnflow bitstream {build_dir} --board {board_name}` first")
    sim = _load(build_dir / "sim" / "results.json") or {}
    sim_status = "current" if sim else "missing"
    if sim and not stamps.is_current(build_dir, "sim", stamps.sim_inputs(build_dir)):
        sim, sim_status = {}, "stale"  # made from another dataflow graph, RTL, test set or simulator
    est = _load(build_dir / "estimates.json") or {}
    xc7 = _load(build_dir / "impl" / "xc7z020" / "estimate.json")
    hw_map = _load(build_dir / "sim" / "boundary" / "map.json")
    map_stamp = stamps.read_stamp(build_dir, "boundary", key="map") or {}
    if hw_map and any(map_stamp.get(k) != v for k, v in stamps.sim_inputs(build_dir).items()):
        hw_map = None  # made from another dataflow graph, RTL or test set

    calibration = current_calibration(build_dir)

    utilization = _utilization(impl)
    perf = _performance(impl, sim, est)
    clock = impl["clock_mhz"]
    return {
        "build": str(build_dir),
        "board": impl["board"],
        "part": impl["part"],
        "bitstream": impl["bitstream"],
        "timing_met": impl["timing_met"],
        "clock": {"requested_mhz": impl["requested_mhz"], "pll_mhz": clock, "pll": impl.get("pll", {})},
        "fmax": impl["fmax"],
        "utilization": utilization,
        "performance": perf,
        "accuracy": {k: sim.get(k) for k in ("frames", "mismatches", "sw_accuracy", "hw_accuracy")} if sim else None,
        "simulation": sim_status,
        "fifo_sizing_fallback": (sim.get("fifo_sizing") or {}).get("fallback"),  # sim/results.json
        "decision_map": hw_map,  # sim/boundary/map.json (qnnflow.hwmap), when current
        "calibration": _calibration(calibration) if calibration else None,  # calibration/calibration.json
        "xc7z020_estimate": xc7,
        "seconds": impl["seconds"],
        "logs": impl["logs"],
        "tools": impl.get("tools", {}),  # the versions impl.json was made with
    }


def current_calibration(build_dir: Path) -> dict | None:
    """``calibration/calibration.json`` when the compiled model is its choice, else None."""
    rec = _load(build_dir / "calibration" / "calibration.json")
    compiled = (stamps.read_stamp(build_dir, "compile") or {}).get("model")
    if rec is None or compiled != stamps.digest_path(build_dir / "calibration" / "model.onnx"):
        return None  # no calibration, or the compiled model is not its choice
    return rec


def _calibration(rec: dict) -> dict:
    """What the report shows of boundary-aware calibration: the rules' choices and every candidate."""
    keep = ("accuracy", "flips", "flip_rate", "slice_jaccard_distance", "median_boundary_shift")
    return {
        "settings": rec["settings"],
        "reference": rec["reference"],
        "choice": rec["choice"],
        "accuracy_choice": rec["accuracy_choice"],
        "candidates": [
            {"name": c["name"], "origin": c["origin"], "boundary_ok": c["boundary_ok"], "accuracy_ok": c["accuracy_ok"],
             "cal": {k: c["cal"][k] for k in keep}, "test": {k: c["test"][k] for k in keep},
             "resources": c["resources"]}
            for c in rec["candidates"]
        ],  # fmt: skip
    }


def _calibration_md(cal: dict) -> list[str]:
    s, ch, acc = cal["settings"], cal["choice"], cal["accuracy_choice"]
    lines = ["", "## Boundary-aware calibration", "",
             f"Candidates quantized after training (weights and activations, widths {s['widths'][0]}..{s['widths'][-1]}"
             f"{', per-layer greedy search' if s['mixed'] else ''}), measured against the float reference; the rule "
             f"sees the calibration split only. Deployed: **{ch['name']}** — {ch['why']}.", ""]  # fmt: skip
    for label, c in (("deployed (boundary rule)", ch), ("accuracy rule, for comparison", acc)):
        t = c["test"]
        lines.append(f"- {label}: {c['name']}; held-out accuracy {t['accuracy']:.4f} (float "
                     f"{cal['reference']['test_accuracy']:.4f}), flips {t['flips']}, slice Jaccard "
                     f"{t['slice_jaccard_distance']:.3f}, median boundary shift {t['median_boundary_shift']:.4f}")
    lines += ["", "| candidate | origin | cal. acc. | cal. flips | cal. Jaccard | within tol. | LUT4 | DP16KD | "
              "held-out acc. | held-out flips | held-out Jaccard |",
              "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for c in cal["candidates"]:
        r = c["resources"] or {}
        lines.append(f"| {c['name']} | {c['origin']} | {c['cal']['accuracy']:.4f} | {c['cal']['flips']} | "
                     f"{c['cal']['slice_jaccard_distance']:.3f} | {'yes' if c['boundary_ok'] else 'no'} | "
                     f"{r.get('LUT4', '')} | {r.get('DP16KD', '')} | {c['test']['accuracy']:.4f} | "
                     f"{c['test']['flips']} | {c['test']['slice_jaccard_distance']:.3f} |")
    lines += ["", "![candidates: boundary distance against estimated LUT4](calibration/candidates.png)"]
    return lines


def _utilization(impl: dict) -> dict:
    """Used / available / percent of the family's resources (nextpnr), and Yosys' LUT4 / FF on iCE40
    (where nextpnr counts logic cells that pack both)."""
    names = _FAMILY_CELLS[impl["family"]]
    utilization = {}
    for cell, label in names.items():
        u = impl["utilization"].get(cell)
        if u is None:
            continue
        utilization[label] = {"used": u["used"], "available": u["available"],
                              "percent": round(100 * u["used"] / u["available"], 2) if u["available"] else 0.0}
    if impl["family"] == "ice40":
        cells = impl["yosys_cells"]
        utilization["LUT4 (Yosys)"] = {"used": cells.get("SB_LUT4", 0)}
        utilization["FF (Yosys)"] = {"used": sum(v for k, v in cells.items() if k.startswith("SB_DFF"))}
    return utilization


def _performance(impl: dict, sim: dict, est: dict) -> dict:
    """Clock, Fmax, cycles per frame (measured in simulation, else estimated), latency, and frames/s
    at the clock, at Fmax and over the UART."""
    clock = impl["clock_mhz"]
    fmax = min((v["achieved"] for v in impl["fmax"].values()), default=None)
    cycles = sim.get("cycles_per_frame_measured") or est.get("ii_cycles")
    cycles_source = "simulation" if sim.get("cycles_per_frame_measured") else ("estimate" if cycles else None)
    latency_cycles = sim.get("latency_cycles") or est.get("latency_cycles")
    fmt = LinkFormat(**impl["link_format"])
    link_fps = fmt.link_fps(impl["baud"])
    perf: dict = {"clock_mhz": clock, "fmax_mhz": fmax, "cycles_per_frame": cycles,
                  "cycles_per_frame_from": cycles_source, "latency_cycles": latency_cycles,
                  "uart_baud": impl["baud"], "uart_fps": round(link_fps, 1)}
    if cycles:
        perf["fps_at_clock"] = round(clock * 1e6 / cycles, 1)
        perf["fps_at_fmax"] = round(fmax * 1e6 / cycles, 1) if fmax else None
        perf["fps_over_uart"] = round(min(perf["fps_at_clock"], link_fps), 1)
    if latency_cycles:
        perf["latency_us_at_clock"] = round(latency_cycles / clock, 2)
    return perf


def _md(report: dict) -> str:
    lines = [f"# {Path(report['build']).name} on {report['board']} ({report['part']})", ""]
    lines.append(f"Bitstream: `{report['bitstream']}`" if report["bitstream"] else "Bitstream: not written")
    clock = report["clock"]
    lines += ["", f"Clock: {clock['pll_mhz']:g} MHz (requested {clock['requested_mhz']:g} MHz); "
              f"timing {'met' if report['timing_met'] else 'NOT met'}", "",
              "| clock domain | Fmax (MHz) | constraint (MHz) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['achieved']:.1f} | {v['constraint']:.1f} |" for k, v in report["fmax"].items()]
    lines += ["", "## Utilization", "", "| resource | used | available | % |", "|---|---:|---:|---:|"]
    for k, v in report["utilization"].items():
        lines.append(f"| {k} | {v['used']} | {v.get('available', '')} | {v.get('percent', '')} |")
    p = report["performance"]
    lines += ["", "## Throughput and latency", ""]
    if p.get("cycles_per_frame"):
        lines += [
            f"- cycles per frame: {p['cycles_per_frame']} ({p['cycles_per_frame_from']})",
            f"- accelerator: {p['fps_at_clock']} frames/s at {p['clock_mhz']:g} MHz"
            + (f", {p['fps_at_fmax']} frames/s at Fmax {p['fmax_mhz']:.1f} MHz" if p.get("fps_at_fmax") else ""),
        ]
        if p.get("latency_us_at_clock"):
            lines.append(f"- latency: {p['latency_cycles']} cycles = {p['latency_us_at_clock']} us")
        lines.append(f"- over the UART at {p['uart_baud']} baud: at most {p['uart_fps']} frames/s "
                     f"(so {p['fps_over_uart']} frames/s end to end)")
    else:
        lines.append("- no cycle count (neither sim/results.json nor estimates.json)")
    acc = report["accuracy"]
    lines += ["", "## Accuracy", ""]
    if acc:
        lines.append(f"- software {_acc(acc['sw_accuracy'])}, hardware (simulated) {_acc(acc['hw_accuracy'])}, "
                     f"{acc['mismatches']} mismatches in {acc['frames']} frames")
    elif report.get("simulation") == "stale":
        lines.append("- sim/results.json is stale (made from other inputs than the build folder now holds): "
                     "run `qnnflow sim` again")
    else:
        lines.append("- no simulation results (sim/results.json)")
    if report.get("fifo_sizing_fallback"):
        lines.append(f"- FIFOs kept one frame deep (sizing fallback): {report['fifo_sizing_fallback']['reason']}")
    m = report.get("decision_map")
    if m:
        sw, fl = m["hw_vs_software"], m.get("hw_vs_float")
        lines += ["", "## Decision map of the hardware", "",
                  f"- {m['cells']} cells of the PCA slice of the test inputs ({m['grid']} x {m['grid']}, "
                  f"snapped to the input grid) through the stitched RTL: {sw['slice_flip_cells']} cells differ "
                  f"from the software model, boundary Jaccard distance {sw['slice_jaccard_distance']:g}"]
        if fl:
            lines.append(f"- against the float reference: boundary Jaccard distance "
                         f"{fl['slice_jaccard_distance']:.3f}, {fl['slice_flip_cells']} flipped cells, junction cells "
                         f"{fl['junction_cells']} "
                         f"(float {fl['junction_cells_ref']})")
        if m.get("stalled_subsample"):
            st = m["stalled_subsample"]
            lines.append(f"- {st['cells']} cells also through cocotb with random stalls: {st['mismatches']} mismatches")
        if m.get("plot"):
            lines += ["", "![decision map: float reference and hardware](sim/boundary/map.png)"]
    if report.get("calibration"):
        lines += _calibration_md(report["calibration"])
    xc7 = report["xc7z020_estimate"]
    if xc7:
        lines += ["", "## xc7z020 estimate (Yosys synth_xilinx, accelerator only)", "",
                  "| resource | used | available | % |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {xc7['used'][k]} | {xc7['available'][k]} | {xc7['percent'][k]} |" for k in xc7["used"]]
    lines += ["", "## Wall time", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in report["seconds"].items()]
    lines += ["", "Logs: " + ", ".join(f"`{v}`" for v in report["logs"].values()), ""]
    return "\n".join(lines)


def _acc(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{value:.4f}"


def write_report(build_dir: Path | str, board: Board | str) -> dict:
    """Write ``report.json`` and ``report.md`` into ``build_dir``; returns the report."""
    report = build_report(build_dir, board)
    Path(build_dir, "report.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    Path(build_dir, "report.md").write_text(_md(report))
    return report


def summary(report: dict) -> str:
    """A few lines for the end of a build: where the bitstream is, utilization, Fmax, fps, accuracy."""
    util = ", ".join(f"{k} {v['used']}/{v['available']} ({v['percent']}%)"
                     for k, v in report["utilization"].items() if "available" in v)
    p = report["performance"]
    out = [f"bitstream: {report['bitstream']}", f"utilization: {util}",
           f"clock {p['clock_mhz']:g} MHz, Fmax {p['fmax_mhz']:.1f} MHz" if p["fmax_mhz"] else ""]
    if p.get("fps_at_clock"):
        out.append(f"{p['fps_at_clock']} frames/s in the accelerator, {p['fps_over_uart']} frames/s over the UART")
    if report["accuracy"]:
        a = report["accuracy"]
        out.append(
            f"accuracy: software {_acc(a['sw_accuracy'])}, hardware {_acc(a['hw_accuracy'])} "
            f"({a['mismatches']} mismatches in {a['frames']} frames)"
        )
    return "\n".join(line for line in out if line)
