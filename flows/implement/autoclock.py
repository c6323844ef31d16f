"""``--clock-mhz auto``: the highest clock the board's PLL makes that the design closes at.

nextpnr reports the Fmax a placement reaches for the clock it was asked for; placement is
timing-driven, and a placement asked for far more than the design can reach comes out worse than
one asked for a little less. So the search starts at the family's usual clock
(:data:`NOMINAL_MHZ`), then asks the PLL for the nearest frequency at or below the Fmax measured
(less a small margin: Fmax moves a few MHz between placements of nearly the same netlist) and
places again: upwards while a run closes and the next PLL step is higher, downwards while it
misses. A run placed upwards that misses sends the search back to the last clock that closed,
placed once more (nextpnr is deterministic for a seed, so it closes again). At most :data:`TRIES`
clocks after the first. A clock missed by less than :data:`NEAR` of it is placed again with the
next nextpnr seeds (up to :data:`SEEDS` in all) before the search moves on: placements of one
netlist differ by several MHz from seed to seed, so a near miss is often a placement, not the
design. Every run is recorded in ``impl.json`` (``clock_search``: clock, seed, Fmax, met) and
printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qnnflow.flows.implement.boards import BoardSpec, board_spec, clock_settings
from qnnflow.flows.implement.pnr import ImplResult, implement

from qnnflow.config import Board
from qnnflow.errors import FlowError

AUTO = "auto"
# the family's usual clock: the first placement aims here, and the compiler's estimates (frames/s)
# assume it before place and route has measured the clock
NOMINAL_MHZ = {"ecp5": 150.0, "ice40": 48.0, "gowin": 100.0}
MARGIN = 0.98  # of the measured Fmax, for the next try
TRIES = 4  # clocks placed after the probe
SEEDS = 3  # nextpnr seeds tried at a clock missed by less than NEAR
NEAR = 0.95


def parse_clock(text: str) -> float | str:
    """``--clock-mhz``: a positive number of MHz, or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        mhz = float(text)
    except ValueError:
        raise ValueError(f"--clock-mhz takes a number of MHz or 'auto', not {text!r}") from None
    if mhz <= 0:
        raise ValueError(f"--clock-mhz must be positive, not {text}")
    return mhz


def pll_at_most(spec: BoardSpec, limit_mhz: float) -> float:
    """The request whose PLL output is the highest frequency not above ``limit_mhz`` (the PLL
    picks the nearest setting it can make, which may lie above the request)."""
    want = limit_mhz
    for _ in range(200):
        if clock_settings(spec, want).mhz <= limit_mhz:
            return want
        want -= max(0.25, want * 0.005)
    raise FlowError(f"no {spec.family} PLL setting of {spec.name} stays at or below {limit_mhz:.1f} MHz")


def _fmax(result: ImplResult) -> float:
    return min(v["achieved"] for v in result.fmax.values())


def implement_auto(
    build_dir: Path | str,
    board: Board | str,
    *,
    progress: Callable[[str], None] | None = print,
    seed: int = 1,
    **kwargs,
) -> ImplResult:
    """:func:`implement` at the highest clock that closes (see the module's docstring); raises
    FlowError when no try closes. ``seed`` is the first nextpnr seed of each clock."""
    spec = board_spec(board)
    say = progress or (lambda _msg: None)
    tries: list[dict] = []
    closed: dict[float, int] = {}  # request -> the seed that closed it

    def run(want: float, seeds: tuple[int, ...]) -> ImplResult:
        """Place for ``want`` with each seed in turn until one closes or a miss is not near."""
        best: ImplResult | None = None
        for k, s in enumerate(seeds):
            if k:
                say(f"  --clock-mhz auto: Fmax {tries[-1]['fmax_mhz']:.1f} MHz, near the clock; nextpnr seed {s} ...")
            result = implement(build_dir, board, want, progress=progress, require_timing=False, seed=s, **kwargs)
            tries.append(_try(result, s))
            if result.timing_met:
                closed[want] = s
                return result
            if best is None or _fmax(result) > _fmax(best):
                best = result
            if _fmax(result) < NEAR * result.clock_mhz:
                break
        assert best is not None
        return best

    all_seeds = tuple(range(seed, seed + SEEDS))
    want = pll_at_most(spec, NOMINAL_MHZ.get(spec.family, 50.0))
    say(f"  --clock-mhz auto: placing for {clock_settings(spec, want).mhz:.2f} MHz first ...")
    result = run(want, all_seeds)
    best = want if result.timing_met else None
    for _ in range(TRIES):
        nxt = pll_at_most(spec, _fmax(result) * MARGIN)
        if result.timing_met and clock_settings(spec, nxt).mhz <= result.clock_mhz + 0.5:
            break  # the next PLL step up is not above this clock: converged
        if not result.timing_met and best is not None:
            nxt = best  # an upward step missed: back to the clock that closed
        step = clock_settings(spec, nxt).mhz
        say(f"  --clock-mhz auto: Fmax {_fmax(result):.1f} MHz; placing for {step:.2f} MHz ...")
        result = run(nxt, (closed[nxt],) if nxt in closed else all_seeds)
        if result.timing_met:
            if nxt == best:
                break
            best = nxt
    if not result.timing_met and best is not None:  # the tries ran out on a step up that missed
        result = run(best, (closed[best],))
    result.clock_search = tries
    result.write(Path(build_dir) / "impl" / spec.name / "impl.json")
    if not result.timing_met:
        runs = ", ".join(f"{t['clock_mhz']:.1f} MHz seed {t['seed']}: Fmax {t['fmax_mhz']:.1f}" for t in tries)
        raise FlowError(
            f"--clock-mhz auto: no clock closed in {len(tries)} place-and-route runs ({runs}); "
            "give --clock-mhz a lower value"
        )
    say(
        f"  --clock-mhz auto: {result.clock_mhz:.2f} MHz (Fmax {_fmax(result):.1f} MHz, nextpnr seed "
        f"{tries[-1]['seed']}) after {len(tries)} runs"
    )
    return result


def _try(result: ImplResult, seed: int) -> dict:
    return {"clock_mhz": result.clock_mhz, "seed": seed, "fmax_mhz": round(_fmax(result), 2), "met": result.timing_met}
