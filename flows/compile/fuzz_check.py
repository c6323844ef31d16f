"""Running a fuzz case (:mod:`qnnflow.flows.compile.fuzz`) through the compiler, and sorting the outcome.

:func:`run_case` compiles a case and sorts the outcome into one of three kinds
(:func:`qnnflow.sim.fuzz.simulate_case` adds the stitched Verilator simulation of a compiled one):

- ``exact``: every compile step verified (and, when simulated, 0 mismatches between the RTL and the
  dataflow graph, and the hardware's decisions equal to QONNX execution of the original);
- ``error``: a clear refusal (``ValueError`` / ``FlowError``, not a verification failure) whose
  message names a node or op of the graph -- an unsupported combination, said as such;
- ``bug``: anything else -- another exception type, a verification failure, a simulation mismatch,
  or an error that names no node.

No torch here: the compiler is imported only when a case runs.
"""

from __future__ import annotations

import copy
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from qnnflow.flows.compile.fuzz import FuzzCase
from qonnx.core.modelwrapper import ModelWrapper

OUTCOMES = ("exact", "error", "bug")

# Refusals that are wrong for the graphs made here, though they name a node: the generator makes
# only graphs for which these statements are false (an average of equally spaced levels is equally
# spaced), so each is a bug of the compiler, not a limit it states.
FALSE_REFUSALS = (re.compile(r"input levels .* are not equally spaced"),)


@dataclass
class Outcome:
    """The kind (one of :data:`OUTCOMES`), what happened, and the seconds taken."""

    seed: int
    kind: str
    detail: str
    features: list[str]
    simulated: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "kind": self.kind,
            "detail": self.detail,
            "features": " ".join(self.features),
            "simulated": self.simulated,
            "seconds": round(self.seconds, 2),
        }


def names_a_node(message: str, model: ModelWrapper) -> bool:
    """Whether ``message`` names a node of ``model`` or one of its op types (as compile errors do)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
    return any(n.name in words or n.op_type in words for n in model.graph.node)


def run_case(case: FuzzCase, out_dir: Path | str, target_cycles: int | None = None, malformed: bool = False) -> Outcome:
    """Compile ``case`` into ``out_dir``; the outcome, never an exception. ``malformed`` (a case from
    :func:`mutate`): a ValueError / FlowError is a clear error even when it names a tensor, not a
    node. (The stitched simulation of a compiled case is :func:`qnnflow.sim.fuzz.simulate_case`:
    ``flows`` does not use ``sim``.)"""
    import time

    from qnnflow.flows.compile.driver import compile_model
    from qnnflow.flows.compile.steps import CompileOptions, OutputMode
    from qnnflow.flows.compile.verify import VerificationError

    from qnnflow.errors import FlowError

    start = time.perf_counter()
    out = Path(out_dir)

    def done(kind: str, detail: str) -> Outcome:
        return Outcome(case.seed, kind, detail, case.features, False, time.perf_counter() - start)

    original = ModelWrapper(copy.deepcopy(case.model.model), fix_missing_initializer_valueinfo=False)
    try:
        compile_model(
            ModelWrapper(copy.deepcopy(case.model.model), fix_missing_initializer_valueinfo=False),
            out,
            inputs=case.inputs,
            opts=CompileOptions(
                target_cycles=target_cycles, output=OutputMode.LOGITS if case.logits else OutputMode.LABELS
            ),
            verbose=False,
        )
    except VerificationError as err:
        return done("bug", f"verification: {one_line(err)}")
    except (ValueError, FlowError) as err:
        msg = one_line(err)
        if any(p.search(msg) for p in FALSE_REFUSALS):
            return done("bug", f"false refusal: {msg}")
        if malformed or names_a_node(msg, original):
            return done("error", msg)
        return done("bug", f"error naming no node: {type(err).__name__}: {msg}")
    except Exception as err:  # noqa: BLE001 - any other exception is what the fuzzer looks for
        return done("bug", f"{type(err).__name__}: {one_line(err)} at {raised_at(err)}")
    return done("exact", "compiled, every step verified")


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:400]


def raised_at(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno}"


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for o in outcomes:
        counts[o.kind] += 1
    return counts
