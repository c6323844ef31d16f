"""cocotb bench of ``hw/board_top.sv``: the UART host link, driven through its serial pins.

The host side is :mod:`qnnflow.link` itself (frame encoder, parser and :class:`~qnnflow.link.Session`),
the same code that drives a real board over pyserial; only the byte transport differs: here two
coroutines bit-bang ``uart_rxd`` and sample ``uart_txd`` at the bench's baud rate.

The accelerator inside is whatever module ``accelerator`` the runner compiled in. With
``vectors`` in the settings (a generated accelerator: each frame's input beats and the output
beats the dataflow graph computes for it), frames are drawn from those and every reply must equal
its vector's output; without, the reference is that of the test stand-in
(``tests/hw/data/standin_accelerator.sv``): output beat k of a frame is (sum of its input beats +
k) mod 2**OUT_W. The session's reply timeout comes from the link's own arithmetic
(:func:`qnnflow.link.reply_timeout`) at the bench's baud rate, with the accelerator's latency and
frame interval from the settings (``latency_cycles``, ``interval_cycles``), in simulated seconds.

Tests: ``results_in_order`` (a clean link, four frames in flight: no timeouts, and the timeout
within 4x of the longest round trip), ``corrupted_frames`` (each kind of bad frame and its error
answer), ``noisy_link`` (random damage; every answer right through resends) and ``late_answer``
(an answer held back past the timeout is dropped as stale).
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time
from qnnflow.sim.streams import CLOCK_NS, load_config, write_report

from qnnflow.link import HEADER_BYTES, FrameParser, FrameType, LinkFormat, Session, beats_to_bytes, encode_frame

CFG = load_config()
P = CFG["params"]
FMT = LinkFormat(P["IN_W"], P["IN_BEATS"], P["OUT_W"], P["OUT_BEATS"])
BIT_NS = P["CLKS_PER_BIT"] * CLOCK_NS
BAUD = 1e9 / BIT_NS  # bits per simulated second
TIMEOUT_NS = P["TIMEOUT_CLKS"] * CLOCK_NS
VECTORS = {tuple(v["in"]): v["out"] for v in CFG.get("vectors", [])}


def reference(beats: list[int]) -> list[int]:
    if VECTORS:
        return VECTORS[tuple(beats)]
    total = sum(beats)
    return [(total + k) % (1 << P["OUT_W"]) for k in range(P["OUT_BEATS"])]


def session(frames: list[list[int]], *, window: int, retries: int = 3) -> Session:
    """A host session at the bench's baud rate; no host-side latency (the bench reads the line directly)."""
    return Session(FMT, frames, baud=BAUD, window=window, retries=retries, host_latency_s=0.0,
                   latency_s=CFG.get("latency_cycles", 0) * CLOCK_NS * 1e-9,
                   interval_s=CFG.get("interval_cycles", 0) * CLOCK_NS * 1e-9)


class Uart:
    """The host's serial port, bit-banged: bytes queued for ``uart_rxd``, bytes seen on ``uart_txd``.
    A queued byte may carry a low stop bit (a framing error on the board's side)."""

    def __init__(self, dut):
        self.dut = dut
        self.tx: deque[tuple[int, bool]] = deque()
        self.rx = bytearray()
        self.rx_framing_errors = 0
        dut.uart_rxd.value = 1
        cocotb.start_soon(self._send())
        cocotb.start_soon(self._receive())

    def write(self, data: bytes, *, bad_stop_at: int | None = None) -> None:
        for i, byte in enumerate(data):
            self.tx.append((byte, i != bad_stop_at))

    def read(self) -> bytes:
        data = bytes(self.rx)
        self.rx.clear()
        return data

    @property
    def idle(self) -> bool:
        return not self.tx and self._sending is None

    _sending: int | None = None

    async def _send(self) -> None:
        while True:
            if not self.tx:
                await Timer(BIT_NS, unit="ns")
                continue
            byte, good_stop = self.tx.popleft()
            self._sending = byte
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [int(good_stop)]:
                self.dut.uart_rxd.value = bit
                await Timer(BIT_NS, unit="ns")
            self.dut.uart_rxd.value = 1
            if not good_stop:
                await Timer(BIT_NS, unit="ns")  # the line must go high again before a start bit
            self._sending = None

    async def _receive(self) -> None:
        while True:
            await FallingEdge(self.dut.uart_txd)
            await Timer(BIT_NS // 2, unit="ns")
            if int(self.dut.uart_txd.value) != 0:
                continue  # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await Timer(BIT_NS, unit="ns")
                byte |= int(self.dut.uart_txd.value) << i
            await Timer(BIT_NS, unit="ns")
            if int(self.dut.uart_txd.value) != 1:
                self.rx_framing_errors += 1
            self.rx.append(byte)


async def start(dut) -> Uart:
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    uart = Uart(dut)
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await Timer(4 * BIT_NS, unit="ns")
    return uart


def random_frames(rng: random.Random, count: int) -> list[list[int]]:
    """Random input frames, or with ``vectors`` a random choice of them (each at least once when
    ``count`` allows)."""
    if VECTORS:
        keys = [list(k) for k in VECTORS]
        rng.shuffle(keys)
        return keys[:count] + [rng.choice(keys) for _ in range(count - len(keys))]
    return [[rng.getrandbits(P["IN_W"]) for _ in range(P["IN_BEATS"])] for _ in range(count)]


def frame_ns(nbytes: int) -> int:
    return nbytes * 10 * BIT_NS


async def run_session(uart: Uart, session: Session, *, corrupt=None, deliver=None, limit_ns: int) -> None:
    """Drive a session over the bit-banged UART until it is done (or fail after ``limit_ns``).
    ``corrupt(uart, data)`` sends in place of ``uart.write``; ``deliver(data)`` says which of the
    received bytes the session sees now (a host that holds bytes back)."""
    begin = get_sim_time("ns")
    while not session.done:
        now = get_sim_time("ns")
        assert now - begin < limit_ns, (
            f"session not done after {limit_ns} ns: {sum(o is not None for o in session.outputs)} of "
            f"{len(session.frames)} answered, errors {dict(session.errors)} (seed {CFG['seed']})"
        )
        data = session.poll(now * 1e-9)
        if data:
            if corrupt is None:
                uart.write(data)
            else:
                corrupt(uart, data)
        data = uart.read()
        session.receive(deliver(data) if deliver else data, get_sim_time("ns") * 1e-9)
        await Timer(BIT_NS * 5, unit="ns")


@cocotb.test()
async def results_in_order(dut):
    """Frames sent back to back, several in flight: every result right, in order, no errors."""
    uart = await start(dut)
    rng = random.Random(CFG["seed"])
    frames = random_frames(rng, CFG.get("clean_frames", 10))
    host = session(frames, window=4)
    await run_session(uart, host, limit_ns=round(30 * frame_ns(FMT.request_bytes) + 10 * host.timeout * 1e9))
    # the timeout from the link's arithmetic is long enough: no frame is given up on a clean link
    assert not host.errors and host.resent == 0, f"errors on a clean link: {dict(host.errors)}"
    for i, (frame, out) in enumerate(zip(frames, host.outputs, strict=True)):
        assert out == reference(frame), f"frame {i}: got {out}, want {reference(frame)} (seed {CFG['seed']})"
    assert host.parser.bad_crc == 0 and host.parser.skipped == 0 and host.stale == 0
    assert uart.rx_framing_errors == 0
    write_report("clean_frames", len(frames))
    # and it follows the link: within a small factor of the longest wait seen (a fixed constant
    # fit for a real board would be thousands of times too long here)
    assert host.max_round_trip < host.timeout < 4 * host.max_round_trip, (
        f"timeout {host.timeout * 1e6:.1f} us, longest round trip {host.max_round_trip * 1e6:.1f} us"
    )
    write_report("clean", {"inputs": frames, "outputs": host.outputs, "timeout_s": host.timeout,
                           "max_round_trip_s": host.max_round_trip})


def _clean_payload(rng: random.Random, ftype: int, seq: int, extra: int = 0) -> tuple[list[int], bytes]:
    """A frame whose bytes after SYNC hold no SYNC value, so that its tail, skipped by the board
    after an early error, cannot start a false frame."""
    while True:
        beats = [rng.getrandbits(P["IN_W"]) for _ in range(P["IN_BEATS"] + extra)]
        frame = encode_frame(ftype, seq, beats_to_bytes(beats, P["IN_W"]))
        if 0xA5 not in frame[1:]:
            return beats[: P["IN_BEATS"]], frame


def _good_frame(rng: random.Random, seq: int) -> tuple[list[int], bytes]:
    """An image frame the board must answer with a result (with ``vectors``, one of theirs)."""
    if not VECTORS:
        return _clean_payload(rng, FrameType.IMAGE, seq)
    beats = list(rng.choice(list(VECTORS)))
    return beats, encode_frame(FrameType.IMAGE, seq, beats_to_bytes(beats, P["IN_W"]))


def accelerator_ns() -> int:
    """The accelerator's time for one frame, latency and interval (settings), in ns."""
    return (CFG.get("latency_cycles", 0) + CFG.get("interval_cycles", 0)) * CLOCK_NS


class Exchanges:
    """Frames sent to the board one at a time, the answers that came back (``got``) and the ones
    that should have (``expect``), as (type, seq, payload)."""

    def __init__(self, uart: Uart):
        self.uart = uart
        self.parser = FrameParser()
        self.got: list[tuple] = []
        self.expect: list[tuple] = []

    async def collect(self, limit_ns: int, *, early: bool = True) -> None:
        """Read answers until the expected ones are in and the bytes are out (with ``early``), at
        most for ``limit_ns``."""
        step = frame_ns(1)
        for _ in range(max(1, limit_ns // step)):
            await Timer(step, unit="ns")
            self.got.extend((f.type, f.seq, f.payload) for f in self.parser.feed(self.uart.read()))
            if early and len(self.got) >= len(self.expect) and self.uart.idle:
                return

    async def send(self, data: bytes, want: list[tuple], *, bad_stop_at: int | None = None) -> None:
        """Send ``data`` (with a low stop bit at byte ``bad_stop_at``) and collect the answers ``want``."""
        self.uart.write(data, bad_stop_at=bad_stop_at)
        self.expect.extend(want)
        await self.collect(frame_ns(len(data) + FMT.response_bytes + 4) + TIMEOUT_NS + 2 * accelerator_ns())


def _result(seq: int, beats: list[int]) -> tuple:
    """The board's answer to the image frame ``seq`` of input ``beats``."""
    return (FrameType.RESULT, seq, beats_to_bytes(reference(beats), P["OUT_W"]))


def _flipped(frame: bytes, index: int, mask: int) -> bytes:
    """``frame`` with the bits ``mask`` of byte ``index`` flipped."""
    bad = bytearray(frame)
    bad[index] ^= mask
    return bytes(bad)


@cocotb.test()
async def corrupted_frames(dut):
    """Each kind of bad frame gets its error frame; the link and the accelerator resynchronize."""
    board = Exchanges(await start(dut))
    rng = random.Random(CFG["seed"] + 1)

    beats, frame = _good_frame(rng, 1)
    await board.send(frame, [_result(1, beats)])

    _, frame = _clean_payload(rng, FrameType.IMAGE, 2)
    # a payload bit flipped: the CRC no longer matches
    await board.send(_flipped(frame, 6, 0x10), [(FrameType.ERR_CHECKSUM, 2, b"")])
    assert int(dut.led.value) & 2, "the error LED should light after an error frame"

    _, frame = _clean_payload(rng, FrameType.IMAGE, 9)
    # the CRC's high byte wrong, the payload intact
    await board.send(_flipped(frame, -2, 0x01), [(FrameType.ERR_CHECKSUM, 9, b"")])

    await board.send(bytes([0x00, 0x13, 0x5A, 0xFF]), [])  # noise between frames is skipped

    _, frame = _clean_payload(rng, FrameType.IMAGE, 3, extra=1)  # one beat too many
    await board.send(frame, [(FrameType.ERR_LENGTH, 3, b"")])

    _, frame = _clean_payload(rng, 0x02, 4)
    await board.send(frame, [(FrameType.ERR_TYPE, 4, b"")])

    beats, frame = _good_frame(rng, 5)
    await board.send(frame, [_result(5, beats)])

    # a byte of the payload lost to a framing error: the CRC byte is taken as the last payload
    # byte, then the board waits for a CRC byte that never comes
    _, frame = _clean_payload(rng, FrameType.IMAGE, 6)
    await board.send(frame, [(FrameType.ERR_TIMEOUT, 6, b"")], bad_stop_at=HEADER_BYTES + 1)

    _, frame = _clean_payload(rng, FrameType.IMAGE, 7)
    cut = frame[: HEADER_BYTES + max(1, len(frame) // 2 - HEADER_BYTES)]
    await board.send(cut, [(FrameType.ERR_TIMEOUT, 7, b"")])

    await board.send(frame[:2], [(FrameType.ERR_TIMEOUT, 0, b"")])  # a header cut short

    beats, frame = _good_frame(rng, 8)
    await board.send(frame, [_result(8, beats)])

    # anything the board still sends now is an answer too many (it answers in order, so only
    # stray bytes after the last frame could start one, and a frame times out after TIMEOUT_CLKS)
    await board.collect(frame_ns(FMT.response_bytes + 4) + 2 * TIMEOUT_NS, early=False)
    assert board.got == board.expect, f"responses {board.got}\nexpected  {board.expect} (seed {CFG['seed']})"
    assert board.parser.bad_crc == 0 and board.parser.skipped == 0, "the board's own frames must be clean"
    write_report("corrupted_cases", len(board.expect))


@cocotb.test()
async def noisy_link(dut):
    """Random bit errors, lost stop bits and dropped bytes on the way to the board: the session
    still gets every right answer, through error frames, timeouts and resends; nothing hangs."""
    uart = await start(dut)
    rng = random.Random(CFG["seed"] + 2)
    frames = random_frames(rng, CFG.get("noisy_frames", 30))
    hits = {"flip": 0, "stop": 0, "drop": 0}

    def corrupt(uart: Uart, data: bytes) -> None:
        # frame by frame, so that the damage is spread over many frames
        start = 0
        while start < len(data):
            end = start + FMT.request_bytes
            chunk = bytearray(data[start:end])
            roll = rng.random() if sum(hits.values()) else 0.0  # the first frame is always hit
            bad_stop = None
            if roll < 0.15:
                i = rng.randrange(len(chunk))
                chunk[i] ^= 1 << rng.randrange(8)
                hits["flip"] += 1
            elif roll < 0.25:
                bad_stop = rng.randrange(len(chunk))
                hits["stop"] += 1
            elif roll < 0.35:
                del chunk[rng.randrange(len(chunk))]
                hits["drop"] += 1
            uart.write(bytes(chunk), bad_stop_at=bad_stop)
            start = end

    host = session(frames, window=3, retries=20)
    limit_ns = round(400 * frame_ns(FMT.request_bytes) + 40 * host.timeout * 1e9)
    await run_session(uart, host, corrupt=corrupt, limit_ns=limit_ns)
    for i, (frame, out) in enumerate(zip(frames, host.outputs, strict=True)):
        assert out == reference(frame), f"frame {i}: got {out}, want {reference(frame)} (seed {CFG['seed']})"
    assert sum(hits.values()) > 0 and host.resent > 0, f"the noise never hit: {hits} (seed {CFG['seed']})"
    write_report("noisy", {"hits": hits, "errors": dict(host.errors), "resent": host.resent, "stale": host.stale,
                           "inputs": frames, "outputs": host.outputs})


@cocotb.test()
async def late_answer(dut):
    """The host holds the board's first answer back until the frame has timed out and been sent
    again with a new SEQ: the late answer is dropped as stale, the resend's answer is taken."""
    uart = await start(dut)
    rng = random.Random(CFG["seed"] + 3)
    frames = random_frames(rng, 1)
    host = session(frames, window=1)
    held = bytearray()

    def deliver(data: bytes) -> bytes:
        if host.resent == 0:
            held.extend(data)  # the first answer: not seen before the timeout
            return b""
        out = bytes(held) + data
        held.clear()
        return out

    await run_session(uart, host, deliver=deliver, limit_ns=round(8 * frame_ns(FMT.request_bytes) + 6e9 * host.timeout))
    assert host.stale == 1 and host.errors == {"no answer": 1} and host.resent == 1, (
        f"stale {host.stale}, errors {dict(host.errors)}, resent {host.resent} (seed {CFG['seed']})"
    )
    for i, (frame, out) in enumerate(zip(frames, host.outputs, strict=True)):
        assert out == reference(frame), f"frame {i}: got {out}, want {reference(frame)} (seed {CFG['seed']})"
    write_report("late_answer", {"stale": host.stale})
