"""Where a stopped accelerator stopped, read from the valid / ready bits of its streams.

A run that stops -- a deadlock (no handshake anywhere for a while) or a timeout (the cycle limit
reached) -- leaves each stream's valid and ready bit. :func:`diagnose_stall` names from them the
layers where data stopped and, around a fork-join stall, the full FIFOs; :func:`stall_message`
words it for an error. The batch harness and the cocotb bench (:mod:`qnnflow.sim.accel`,
:mod:`qnnflow.sim.tb_accel`) report stalls with it, and FIFO sizing (:mod:`qnnflow.sim.fifo_sizing`)
decides by it whether deeper FIFOs are the cure.
"""

from __future__ import annotations

from qnnflow.flows.codegen.design import Design, FifoInfo


def stall_message(
    design: Design,
    valid: list[int],
    ready: list[int],
    beats: list[int],
    status: str,
    cycle: int,
    last_move: int | None = None,
) -> str:
    """Where the streams stopped: every stream's valid / ready and beats so far, then the layers
    where data stopped (see :func:`stall_causes`).

    ``status`` is "deadlock" (no handshake anywhere for a while) or "timeout" (the cycle limit was
    reached, perhaps with data still moving; ``last_move`` is the cycle of the last handshake)."""
    since = "?" if last_move is None else last_move
    if status == "timeout":
        moving = last_move is not None and cycle - last_move <= 1
        head = f"accelerator timeout: the cycle limit ({cycle}) was reached before every frame came out"
        head += "; streams were still moving" if moving else f"; no stream moved since cycle {since}"
    else:
        head = f"accelerator deadlock at cycle {cycle}: no stream moved since cycle {since}"
    lines = [head + "; streams (valid/ready, beats so far):"]
    for i in range(len(design.streams)):
        lines.append(f"  {design.stream_where(i)}: valid={valid[i]} ready={ready[i]}, {beats[i]} beats")
    causes = stall_causes(design, valid, ready)
    lines.append("  stopped at: " + ("; ".join(causes) if causes else "no layer holds data it cannot pass on"))
    return "\n".join(lines)


def stall_causes(design: Design, valid: list[int], ready: list[int]) -> list[str]:
    """The layers where a stopped accelerator stopped, from the valid / ready bits of its streams
    (see :func:`diagnose_stall`)."""
    return diagnose_stall(design, valid, ready)[0]


def fork_join_fifos(design: Design, valid: list[int], ready: list[int]) -> list[FifoInfo]:
    """The full FIFOs (input valid=1, ready=0) on a branch between a stopped fork and its stopped
    join: the only stall that deeper FIFOs cure. Empty for any other stall."""
    return diagnose_stall(design, valid, ready)[1]


def diagnose_stall(design: Design, valid: list[int], ready: list[int]) -> tuple[list[str], list[FifoInfo]]:
    """The layers where a stopped accelerator stopped, from the valid / ready bits of its streams,
    and the full FIFOs between a stopped fork and its join.

    A stream with valid=1, ready=0 waits for its consumer. A layer is where data stops when it
    - joins inputs (AddStreams) and waits for one (valid=0) while holding another (valid=1, ready=0),
    - forks its input (DuplicateStreams) and one output is not taken while another is idle,
    - has all its inputs offered and none taken, and offers no output (it stopped by itself);
    and the accelerator's output may simply not be taken (m_axis_tready=0). Around a fork-join
    stall the full FIFOs (input valid=1, ready=0) are named: one of them is too shallow."""
    links = _Links(design)
    causes, forks, joins = [], [], []
    for lay in design.layers:
        inst = lay["instance"]
        stop = _stopped_at(links, inst, f"{inst} ({lay['op_type']})", valid, ready)
        if stop is None:
            continue
        role, cause = stop
        causes.append(cause)
        if role == "join":
            joins.append(inst)
        elif role == "fork":
            forks.append(inst)
    out = design.out_index
    if valid[out] and not ready[out]:
        causes.append(f"the accelerator output is not taken ({design.streams[out].name} valid=1, m_axis_tready=0)")
    full = _full_fifos_between(design, links, forks, joins, valid, ready)
    if full:
        names_depths = ", ".join(f"{f.name} (depth {f.depth})" for f in full)
        causes.append(f"full FIFOs: {names_depths}; a branch between a fork and its join needs deeper FIFOs")
    return causes, full


class _Links:
    """The streams of a design by the instance they enter (``ins``) and leave (``outs``)."""

    def __init__(self, design: Design):
        self.streams = design.streams
        self.ins: dict[str, list[int]] = {}
        self.outs: dict[str, list[int]] = {}
        for i, s in enumerate(self.streams):
            self.outs.setdefault(s.src, []).append(i)
            self.ins.setdefault(s.dst, []).append(i)

    def names(self, idx: list[int]) -> str:
        return ", ".join(self.streams[k].name for k in idx)

    def downstream(self, start: str) -> set[str]:
        """Instances reached from ``start`` along streams, src -> dst."""
        return self._reach(start, self.outs, "dst")

    def upstream(self, start: str) -> set[str]:
        """Instances reached from ``start`` against streams, dst -> src."""
        return self._reach(start, self.ins, "src")

    def _reach(self, start: str, step: dict[str, list[int]], end: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for k in step.get(todo.pop(), []):
                nxt = getattr(self.streams[k], end)
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def _stopped_at(links: _Links, inst: str, label: str, valid: list[int], ready: list[int]) -> tuple[str, str] | None:
    """(role, cause) when data stopped at layer ``inst`` (named ``label`` in the cause): role "join",
    "fork" or "self" for the three cases of :func:`diagnose_stall`; None when it did not."""
    i_s, o_s = links.ins.get(inst, []), links.outs.get(inst, [])
    waiting = [k for k in i_s if not valid[k]]
    held = [k for k in i_s if valid[k] and not ready[k]]
    blocked = [k for k in o_s if valid[k] and not ready[k]]
    idle = [k for k in o_s if not valid[k]]
    names = links.names
    if len(i_s) > 1 and waiting and held:
        return "join", f"{label} waits for {names(waiting)} (valid=0) while it holds {names(held)} (valid=1, ready=0)"
    if len(o_s) > 1 and blocked and idle:
        return "fork", f"{label} cannot pass on its input: {names(blocked)} is not taken (valid=1, ready=0)"
    if i_s and held == i_s and o_s and not any(valid[k] for k in o_s):
        return "self", f"{label} takes no input ({names(held)} valid=1, ready=0) and gives no output"
    return None


def _full_fifos_between(
    design: Design, links: _Links, forks: list[str], joins: list[str], valid: list[int], ready: list[int]
) -> list[FifoInfo]:
    """The full FIFOs (input valid=1, ready=0) on a branch between a stopped fork and a stopped join."""
    between = {i for f in forks for i in links.downstream(f)} & {i for j in joins for i in links.upstream(j)}
    return [
        f
        for f in design.fifos
        if links.streams[f.in_stream].dst in between and valid[f.in_stream] and not ready[f.in_stream]
    ]
