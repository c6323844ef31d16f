"""The UART board top in simulation: the host protocol of qnnflow.host against the RTL.

The bench (qnnflow.sim.tb_board_top) bit-bangs the UART pins with the same Session the serial
driver uses: clean frames with several in flight, every kind of corrupted frame (bad checksum,
length, type, a lost byte, a frame or header cut short, noise between frames), and a noisy link
with random bit errors, framing errors and dropped bytes, where the session must still get every
right answer through resends. A fast baud divisor (8 cycles per bit) keeps it short.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qnnflow.flows.boards import board_top_sources
from qnnflow.sim.runner import run_bench

from qnnflow.host import LinkFormat
from tests.hw.standin import standin_sources

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "sim_cache"

CASES = {
    # one byte per beat, one output beat (a class index)
    "in8x16-out4x1": LinkFormat(8, 16, 4, 1),
    # two bytes per beat on both sides, two output beats (logits-like)
    "in12x5-out10x2": LinkFormat(12, 5, 10, 2),
}


@pytest.mark.rtl
@pytest.mark.parametrize("fmt", CASES.values(), ids=CASES.keys())
def test_board_top_uart_link(fmt: LinkFormat) -> None:
    params = {
        "CLKS_PER_BIT": 8,
        "TIMEOUT_CLKS": 8 * 10 * 6,  # six byte times without a byte abandons a frame
        "IN_W": fmt.in_width,
        "IN_BEATS": fmt.in_beats,
        "OUT_W": fmt.out_width,
        "OUT_BEATS": fmt.out_beats,
        "LED_HOLD_CLKS": 100000,
    }
    extra = standin_sources(CACHE / "board_top" / "standin", fmt) + board_top_sources()
    run = run_bench("board_top", params, seed=11, cache_dir=CACHE, extra_sources=extra)
    assert run.tests == 3 and run.failures == 0
    assert run.report["corrupted_cases"] == 9
    noisy = run.report["noisy"]
    assert noisy["resent"] > 0 and sum(noisy["hits"].values()) > 0
