"""The UART's bit period from the clock and the baud rate, and the rate the host uses."""

from __future__ import annotations

import json

import pytest
from qnnflow.flows.implement import uart_clks_per_bit

from qnnflow.host import build_baud
from qnnflow.link import DEFAULT_BAUD


@pytest.mark.parametrize(
    ("mhz", "baud", "cycles"),
    [(50, 115200, 434), (24, 115200, 208), (50, 3_000_000, 17), (12, 3_000_000, 4), (48, 1_000_000, 48)],
)
def test_cycles_per_bit(mhz, baud, cycles):
    n = uart_clks_per_bit(mhz * 1e6, baud)
    assert n == cycles
    assert abs(mhz * 1e6 / n - baud) / baud <= 0.02


def test_a_rate_the_clock_cannot_make_is_refused():
    with pytest.raises(ValueError, match=r"25 MHz cannot make 3000000 baud: 8 cycles per bit give 3125000 baud"):
        uart_clks_per_bit(25e6, 3_000_000)
    with pytest.raises(ValueError, match="at least 4 clock cycles per bit; 10 MHz gives 3.33"):
        uart_clks_per_bit(10e6, 3_000_000)
    with pytest.raises(ValueError, match="baud rate must be positive"):
        uart_clks_per_bit(50e6, 0)


def test_the_host_takes_the_rate_the_bitstream_was_built_for(tmp_path):
    assert build_baud(tmp_path) == DEFAULT_BAUD
    (tmp_path / "report.json").write_text(json.dumps({"performance": {"uart_baud": 921600}}))
    assert build_baud(tmp_path) == 921600
