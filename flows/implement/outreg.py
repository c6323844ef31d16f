"""ECP5 block RAM output registers, taken from the fabric register that follows the read.

A DP16KD read without its output register takes 5.8 ns from the clock to its data (speed grade 6;
0.95 ns with it), more than most of a 150 MHz cycle. Yosys maps an RTL memory's read register onto
the block RAM but never absorbs a second register into its output register (`REGMODE = OUTREG`;
Yosys issue 5814: only explicit instantiation gets it). The RTL library therefore registers every
block-RAM read once more with no logic between (hw/mac_pipeline.sv, hw/fifo.sv with OUT_REG,
hw/sliding_window.sv), and this pass, run on Yosys' netlist before nextpnr, moves those registers
into the block RAMs.

It changes a read port only when the change cannot alter what the design computes: every data
output bit that is used drives exactly one flip-flop and nothing else; all those flip-flops take
the block RAM's clock on the same edge, share one clock enable (or have none, which becomes the
output register's enable `OCE`), have no set/reset, and the port has no reset of its own. The data
then appear in the same cycle as before, from the output register instead of the flip-flops.

A 36-bit-wide read (Yosys' pseudo-dual-port mapping: written on port A, read on port B, the word on
DOA0-17 and DOB0-17) is one read: both halves qualify or neither changes, and it is configured the
way Lattice's own PDPW16KD with an output register is: `REGMODE_A` and `REGMODE_B` both `OUTREG`.
So that each half's register takes the read's clock and enable however the silicon routes them,
port A gets the read clock too (only where it is unused, `0`, or already that clock) and `OCEA` the
same enable as `OCEB`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

_NO_CE = ("1", "1 ")  # TRELLIS_FF's CEMUX when the clock enable is not used


@dataclass(frozen=True)
class _Port:
    letter: str  # "A" or "B"
    bits: tuple[str, ...]  # DO port names, e.g. DOA0 .. DOA17


def _sinks(module: dict) -> dict[object, list[tuple[str, str]]]:
    """Net bit -> the (cell, port) inputs it drives; a module output counts as a sink too."""
    sinks: dict[object, list[tuple[str, str]]] = defaultdict(list)
    for name, cell in module["cells"].items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if dirs.get(port, "input") == "input":
                for bit in bits:
                    sinks[bit].append((name, port))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                sinks[bit].append(("<port>", "out"))
    return sinks


def _register_of(module: dict, sinks, bram: dict, port: _Port) -> dict[str, str] | None:
    """DO port bit -> the flip-flop that registers it, when the whole port qualifies; else None."""
    conn = bram["connections"]
    if conn.get(f"RST{port.letter}") != ["0"]:
        return None
    clock = conn.get(f"CLK{port.letter}")
    regs: dict[str, str] = {}
    enables = set()
    for bit_port in port.bits:
        (bit,) = conn[bit_port]
        users = sinks.get(bit, [])
        if not users:
            continue
        if len(users) != 1:
            return None
        ff_name, ff_port = users[0]
        ff = module["cells"].get(ff_name)
        if ff is None or ff["type"] != "TRELLIS_FF" or ff_port != "DI":
            return None
        p, c = ff["parameters"], ff["connections"]
        if c.get("CLK") != clock or p.get("CLKMUX", "CLK") != "CLK" or c.get("LSR", ["0"]) != ["0"]:
            return None
        if p.get("CEMUX", "1") in _NO_CE:
            enables.add(("1",))
        elif p.get("CEMUX") == "CE":
            enables.add(tuple(c["CE"]))
        else:
            return None
        regs[bit_port] = ff_name
    if not regs or len(enables) != 1:
        return None
    return regs


def _width(bram: dict, letter: str) -> int:
    v = str(bram["parameters"].get(f"DATA_WIDTH_{letter}", "18"))
    return int(v, 2) if set(v) <= {"0", "1"} and len(v) > 8 else int(v)


def _absorb(module: dict, bram: dict, letter: str, regs: dict[str, str]) -> None:
    first = module["cells"][next(iter(regs.values()))]
    ce = ["1"] if first["parameters"].get("CEMUX", "1") in _NO_CE else first["connections"]["CE"]
    for bit_port, ff_name in regs.items():
        bram["connections"][bit_port] = module["cells"].pop(ff_name)["connections"]["Q"]
    bram["connections"][f"OCE{letter}"] = list(ce)
    bram["parameters"][f"REGMODE_{letter}"] = "OUTREG"


def _absorb_wide(module: dict, sinks, bram: dict) -> bool:
    """A 36-bit read on port B (DOA and DOB together): both halves' registers, or nothing."""
    p, conn = bram["parameters"], bram["connections"]
    if p.get("REGMODE_A") != "NOREG" or p.get("REGMODE_B") != "NOREG":
        return False
    if p.get("CLKAMUX", "CLKA") != "CLKA" or p.get("CLKBMUX", "CLKB") != "CLKB":
        return False
    if conn.get("CLKA") not in (["0"], conn.get("CLKB")):
        return False
    bits = tuple(q for q in conn if q.startswith("DOA") or q.startswith("DOB"))
    whole = _register_of(module, sinks, bram, _Port("B", bits))
    if whole is None or conn.get("RSTA") != ["0"]:
        return False
    halves = {x: {q: f for q, f in whole.items() if q.startswith(f"DO{x}")} for x in "AB"}
    conn["CLKA"] = list(conn["CLKB"])
    # one enable for both halves (checked above); a half whose bits are all unused (the last few
    # bits of a wide word) gets the same output register mode and enable as the used half
    used = "B" if halves["B"] else "A"
    _absorb(module, bram, used, halves[used])
    other = "A" if used == "B" else "B"
    if halves[other]:
        _absorb(module, bram, other, halves[other])
    else:
        conn[f"OCE{other}"] = list(conn[f"OCE{used}"])
        p[f"REGMODE_{other}"] = "OUTREG"
    return True


def absorb_output_registers(netlist: dict) -> int:
    """Move the flip-flops after DP16KD reads into their output registers (in place); returns the
    number of read ports changed (a 36-bit read counts once)."""
    changed = 0
    for module in netlist["modules"].values():
        brams = [c for c in module.get("cells", {}).values() if c["type"] == "DP16KD"]
        if not brams:
            continue
        sinks = _sinks(module)
        for bram in brams:
            if 36 in (_width(bram, "A"), _width(bram, "B")):
                changed += _absorb_wide(module, sinks, bram)
                continue
            for letter in "AB":
                if bram["parameters"].get(f"REGMODE_{letter}") != "NOREG":
                    continue
                port = _Port(letter, tuple(p for p in bram["connections"] if p.startswith(f"DO{letter}")))
                regs = _register_of(module, sinks, bram, port)
                if regs is None:
                    continue
                _absorb(module, bram, letter, regs)
                changed += 1
    return changed
