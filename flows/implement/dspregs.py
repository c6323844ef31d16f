"""ECP5 multiplier input and output registers, taken from the fabric registers around a MULT18X18D.

Yosys maps a product onto a MULT18X18D with every register of the block left unused, so a product
between two fabric registers crosses the chip twice: register -> DSP column -> (3.9 ns of
multiplier) -> back to a register beside the logic. hw/mac_pipeline.sv registers each operand
right before the multiplier and the product right after it (USE_MUL); this pass, run on Yosys'
netlist before nextpnr, moves those registers into the block's own input registers (A and B) and
output register, so the multiplier alone is one cycle.

It changes a multiplier only when the change cannot alter what the design computes:
- every operand pin of A (and of B) is a constant or the output of a TRELLIS_FF without set/reset,
  all of them on one clock edge and sharing one clock enable (or none). The block's register then
  takes what the flip-flop took (its D input); the flip-flop stays while anything else uses it.
  A constant pin stays constant (registered, it is the same value from the first clock edge on);
- every used product pin drives exactly one such flip-flop and nothing else, on the same clock;
  the flip-flops go and the pins drive their nets from the output register;
- SIGNEDA and SIGNEDB are constants, and A, B and P are registered all three or not at all, so
  the latency from A and B to P stays what it was (one register before, one after).
The clock enables map onto CE0..CE3, the clock onto CLK0; the registers' resets are tied to 0.
"""

from __future__ import annotations

from collections import defaultdict

_NO_CE = ("1", "1 ")  # TRELLIS_FF's CEMUX when the clock enable is not used
_CONST = ("0", "1", "x", "z")


def _index(module: dict) -> tuple[dict, dict]:
    """(net bit -> the (cell, port) inputs it drives, net bit -> the (cell, port) output driving it)."""
    sinks: dict[object, list[tuple[str, str]]] = defaultdict(list)
    drivers: dict[object, tuple[str, str]] = {}
    for name, cell in module["cells"].items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            for bit in bits:
                if dirs.get(port, "input") == "input":
                    sinks[bit].append((name, port))
                else:
                    drivers[bit] = (name, port)
    for port in module.get("ports", {}).values():
        for bit in port["bits"]:
            if port["direction"] != "input":
                sinks[bit].append(("<port>", "out"))
    return sinks, drivers


def _plain_ff(cell: dict | None) -> bool:
    """A rising-edge TRELLIS_FF without set/reset."""
    if cell is None or cell["type"] != "TRELLIS_FF":
        return False
    p, c = cell["parameters"], cell["connections"]
    return p.get("CLKMUX", "CLK") == "CLK" and c.get("LSR", ["0"]) == ["0"] and p.get("CEMUX", "1") in (*_NO_CE, "CE")


def _enable(cell: dict) -> tuple:
    return ("1",) if cell["parameters"].get("CEMUX", "1") in _NO_CE else tuple(cell["connections"]["CE"])


def _inputs(module: dict, drivers, dsp: dict, operand: str) -> tuple[dict, tuple, tuple] | None:
    """For operand A or B: pin -> the D input bit its flip-flop takes (constants kept), the clock,
    the enable; None when a pin is neither a constant nor a plain flip-flop's output."""
    d_of: dict[str, object] = {}
    clocks, enables = set(), set()
    for i in range(18):
        pin = f"{operand}{i}"
        (bit,) = dsp["connections"].get(pin, ["0"])
        if bit in _CONST:
            d_of[pin] = bit
            continue
        name, port = drivers.get(bit, (None, None))
        ff = module["cells"].get(name) if name else None
        if port != "Q" or not _plain_ff(ff):
            return None
        clocks.add(tuple(ff["connections"]["CLK"]))
        enables.add(_enable(ff))
        (d,) = ff["connections"]["DI"]
        d_of[pin] = d
    if len(clocks) != 1 or len(enables) != 1:
        return None
    return d_of, clocks.pop(), enables.pop()


def _outputs(module: dict, sinks, dsp: dict) -> tuple[dict, tuple, tuple] | None:
    """pin -> the flip-flop that registers it (every used product pin), the clock, the enable."""
    regs: dict[str, str] = {}
    clocks, enables = set(), set()
    for pin, (bit,) in ((p, b) for p, b in dsp["connections"].items() if p[0] == "P" and p[1:].isdigit()):
        users = sinks.get(bit, [])
        if not users:
            continue
        if len(users) != 1 or users[0][1] != "DI" or not _plain_ff(module["cells"].get(users[0][0])):
            return None
        ff = module["cells"][users[0][0]]
        clocks.add(tuple(ff["connections"]["CLK"]))
        enables.add(_enable(ff))
        regs[pin] = users[0][0]
    if not regs or len(clocks) != 1:
        return None
    return regs, clocks.pop(), enables


def _absorb(module: dict, sinks, drivers, name: str, dsp: dict) -> bool:
    p, conn = dsp["parameters"], dsp["connections"]
    if any(str(p.get(f"REG_{r}_CLK", "NONE")) != "NONE" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")):
        return False
    if any(conn.get(s, ["0"])[0] not in _CONST for s in ("SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB")):
        return False
    a, b, out = _inputs(module, drivers, dsp, "A"), _inputs(module, drivers, dsp, "B"), _outputs(module, sinks, dsp)
    if a is None or b is None or out is None:
        return False
    regs, out_clock, out_enables = out
    if not (a[1] == b[1] == out_clock) or len(out_enables) != 1:  # one output register, one enable
        return False
    (out_enable,) = out_enables
    enables = sorted({a[2], b[2], out_enable}, key=str)
    if len(enables) > 4:
        return False
    ce = {e: f"CE{k}" for k, e in enumerate(enables)}
    dirs = dsp.setdefault("port_directions", {})
    for port in ("CLK0", "RST0", *ce.values()):  # Yosys lists only the ports it connected
        dirs[port] = "input"
    conn["CLK0"] = list(out_clock)
    for e, port in ce.items():
        conn[port] = list(e)
    for group, (d_of, _, enable) in (("INPUTA", a), ("INPUTB", b)):
        for pin, d in d_of.items():
            old = conn[pin][0]
            conn[pin] = [d]
            if old not in _CONST:
                sinks[old].remove((name, pin))
                sinks[d].append((name, pin))
        p[f"REG_{group}_CLK"], p[f"REG_{group}_CE"], p[f"REG_{group}_RST"] = "CLK0", ce[enable], "RST0"
    for pin, ff_name in regs.items():
        ff = module["cells"].pop(ff_name)
        conn[pin] = list(ff["connections"]["Q"])
        (d,) = ff["connections"]["DI"]
        sinks[d].remove((ff_name, "DI"))
    p["REG_OUTPUT_CLK"], p["REG_OUTPUT_CE"], p["REG_OUTPUT_RST"] = "CLK0", ce[out_enable], "RST0"
    conn["RST0"] = ["0"]
    return True


def _drop_unused_ffs(module: dict, sinks, names: set[str]) -> None:
    """Remove the operand flip-flops that nothing reads any more."""
    for name in names:
        ff = module["cells"].get(name)
        if ff is None:
            continue
        (q,) = ff["connections"]["Q"]
        if not sinks.get(q):
            module["cells"].pop(name)
            (d,) = ff["connections"]["DI"]
            sinks[d].remove((name, "DI"))


def absorb_multiplier_registers(netlist: dict) -> int:
    """Move the flip-flops around MULT18X18D blocks into their input and output registers (in
    place); returns the number of multipliers changed."""
    changed = 0
    for module in netlist["modules"].values():
        dsps = [(n, c) for n, c in module.get("cells", {}).items() if c["type"] == "MULT18X18D"]
        if not dsps:
            continue
        sinks, drivers = _index(module)
        operand_ffs: set[str] = set()
        for name, dsp in dsps:
            operands = [pin for pin in dsp["connections"] if pin[0] in "AB" and pin[1:].isdigit()]
            before = {pin: dsp["connections"][pin][0] for pin in operands}
            if not _absorb(module, sinks, drivers, name, dsp):
                continue
            changed += 1
            operand_ffs |= {drivers[bit][0] for bit in before.values() if bit not in _CONST and bit in drivers}
        _drop_unused_ffs(module, sinks, operand_ffs)
    return changed
