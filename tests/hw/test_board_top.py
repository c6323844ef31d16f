"""The UART board top in simulation: the host protocol of qnnflow.link against the RTL.

The bench (qnnflow.sim.tb_board_top) bit-bangs the UART pins with the same Session the serial
driver uses: clean frames with several in flight, every kind of corrupted frame (bad CRC in the
payload or in the CRC itself, bad length or type, a lost byte, a frame or header cut short, noise
between frames), and a noisy link with random bit errors, framing errors and dropped bytes, where
the session must still get every right answer through resends; and an answer that reaches the
host after its frame timed out and was resent, which must be dropped as stale. The session's
timeout is its own (from the frame sizes, the baud rate, the window and the accelerator's
latency): a clean link must see no timeouts. A fast baud divisor (8 or 4 cycles per bit) keeps
it short.

Around two accelerators: the test stand-in (tests/hw/standin.py) at two link formats, and the
accelerator that codegen writes for the digits CNN (random weights, integer logits out: 64 beats
of 5 bits in, 10 beats of 11 bits out), where every reply must equal the dataflow graph's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qnnflow.flows.implement.boards import board_top_sources
from qnnflow.sim.runner import run_bench

from qnnflow.link import LinkFormat, beats_to_words, words_to_beats
from tests.hw.standin import standin_sources

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "sim_cache"

CASES = {
    # one byte per beat, one output beat (a class index)
    "in8x16-out4x1": LinkFormat(8, 16, 4, 1),
    # three bytes per beat in (the decoder's byte lanes go round), two on the way out, two output
    # beats (logits-like)
    "in20x3-out10x2": LinkFormat(20, 3, 10, 2),
}


def _params(fmt: LinkFormat, clks_per_bit: int = 8) -> dict[str, int]:
    return {
        "CLKS_PER_BIT": clks_per_bit,
        "TIMEOUT_CLKS": clks_per_bit * 10 * 6,  # six byte times without a byte abandons a frame
        "IN_W": fmt.in_width,
        "IN_BEATS": fmt.in_beats,
        "OUT_W": fmt.out_width,
        "OUT_BEATS": fmt.out_beats,
        "LED_HOLD_CLKS": 100000,
    }


def _check_run(run) -> None:
    assert run.tests == 4 and run.failures == 0
    assert run.report["late_answer"]["stale"] == 1
    assert run.report["corrupted_cases"] == 10
    noisy = run.report["noisy"]
    assert noisy["resent"] > 0 and sum(noisy["hits"].values()) > 0


@pytest.mark.rtl
@pytest.mark.parametrize("fmt", CASES.values(), ids=CASES.keys())
def test_board_top_uart_link(fmt: LinkFormat) -> None:
    extra = standin_sources(CACHE / "board_top" / "standin", fmt) + board_top_sources()
    # the stand-in answers a frame a few cycles after its last beat
    run = run_bench("board_top", _params(fmt), seed=11, cache_dir=CACHE, extra_sources=extra,
                    config={"latency_cycles": fmt.out_beats + 8})
    _check_run(run)


@pytest.mark.rtl
def test_power_on_reset_timing() -> None:
    """hw/boards/power_on_reset.sv against its header: rst falls 19 cycles after `locked` rises,
    rises 5 cycles after it drops, and a lock shorter than the count never releases it."""
    run = run_bench("power_on_reset", {}, seed=1, cache_dir=CACHE,
                    extra_sources=[REPO / "hw" / "boards" / "power_on_reset.sv"])  # fmt: skip
    assert run.tests == 1 and run.failures == 0


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits CNN with random weights, compiled with integer logits out, its RTL generated,
    and the dataflow graph's execution of 12 random images (the hardware's input and output)."""
    pytest.importorskip("torch")
    from qnnflow.flows import codegen
    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions, OutputMode
    from qnnflow.models.export import export_qonnx
    from qnnflow.models.zoo import parse_preset, random_model
    from qnnflow.sim.accel import HostIO, pack_stream
    from qnnflow.sim.stitch import load_model

    folder = tmp_path_factory.mktemp("board_digits")
    preset = "digits-cnn-w2a2"
    shape = parse_preset(preset).input_shape
    onnx = export_qonnx(random_model(preset, seed=3), folder / f"{preset}.onnx", shape)
    x = np.random.default_rng(4).random(size=(12, *shape)).astype(np.float32)
    opts = CompileOptions(target_cycles=2000, output=OutputMode.LOGITS)
    compile_model(onnx, folder / "b", inputs=x, opts=opts, verbose=False)
    model = load_model(folder / "b")
    design = codegen.generate(model, folder / "b" / "rtl")
    host = HostIO(model, design)
    hw_in, hw_out, sw_out = host.run(x)
    s_in, s_out = design.input, design.output
    ins = [words_to_beats(f, s_in.words32) for f in pack_stream(hw_in, s_in).reshape(len(x), -1)]
    outs = [words_to_beats(f, s_out.words32) for f in pack_stream(hw_out, s_out).reshape(len(x), -1)]
    return design, host, ins, outs, hw_out, sw_out, onnx, x


@pytest.mark.rtl
def test_board_top_around_a_generated_accelerator(digits) -> None:
    import json

    from qnnflow.sim.accel import unpack_stream

    design, host, ins, outs, hw_out, sw_out, onnx, x = digits
    s_in, s_out = design.input, design.output
    fmt = LinkFormat(s_in.width, s_in.beats, s_out.width, s_out.beats)
    assert fmt == LinkFormat(5, 64, 11, 10)
    # a reply matched to the wrong frame must show: most images have logits of their own
    assert len({tuple(o) for o in outs}) >= len(outs) // 2 and len({tuple(i) for i in ins}) == len(ins)
    est = json.loads((design.path.parent / "estimates.json").read_text())
    rtl = design.path
    acc = [rtl / f for f in design.files]
    names = {p.name for p in acc}
    extra = acc + [p for p in board_top_sources() if p.name not in names]
    mems = {p.name: p.read_text() for p in rtl.iterdir() if p.suffix in (".mem", ".hex", ".memh")}
    # a simulated cycle of the CNN costs far more than one of the stand-in: the fastest UART the
    # board top takes (4 cycles per bit) and fewer frames keep this under a minute; the model
    # optimized (its simulated cycles, not its build, are what this bench spends)
    config = {"vectors": [{"in": i, "out": o} for i, o in zip(ins, outs, strict=True)],
              "latency_cycles": est["latency_cycles"], "interval_cycles": est["ii_cycles"],
              "clean_frames": 6, "noisy_frames": 8}
    run = run_bench("board_top", _params(fmt, clks_per_bit=4), seed=12, cache_dir=CACHE / "generated",
                    extra_sources=extra, files=mems, config=config, optimize=True)
    _check_run(run)
    # every answer the host got, decoded as the serial driver decodes it, is the dataflow graph's
    # output for that image: the hardware's integers exactly, and the graph's logits after the host part
    index = {tuple(i): k for k, i in enumerate(ins)}
    for case in ("clean", "noisy"):
        got = run.report[case]
        which = [index[tuple(f)] for f in got["inputs"]]
        words = np.array([beats_to_words(o, s_out.words32) for o in got["outputs"]], dtype=np.uint32).reshape(-1)
        board = unpack_stream(words, len(which), s_out).reshape(len(which), *design.out_shape)
        np.testing.assert_array_equal(board, hw_out[which].reshape(board.shape))
        np.testing.assert_array_equal(host.finish(board), sw_out[which].reshape(len(which), -1))
    assert len(set(run.report["clean"]["inputs"][0])) > 1


# the catalogue's parameters and check values (CRC of b"123456789", no reflection, no final XOR)
CRC_CASES = {
    "crc8-smbus": ({"WIDTH": 8, "POLY": 0x07}, 0x00, 0xF4),
    "crc16-ccitt-false": ({"WIDTH": 16, "POLY": 0x1021}, 0xFFFF, 0x29B1),
    "crc32-mpeg2": ({"WIDTH": 32, "POLY": 0x04C11DB7}, 0xFFFFFFFF, 0x0376E6E7),
}


@pytest.mark.rtl
@pytest.mark.parametrize(("params", "init", "check"), CRC_CASES.values(), ids=CRC_CASES.keys())
def test_crc_module_against_the_catalogue_and_the_host(params, init, check) -> None:
    run = run_bench("crc", params, seed=5, cache_dir=CACHE, config={"init": init, "check": check})
    assert run.tests == 2 and run.failures == 0 and run.report["check"] == check
    if params["WIDTH"] == 16:
        assert run.report["host_pairs"] == 503
