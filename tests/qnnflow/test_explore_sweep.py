"""qnnflow explore on Ray: shared units, the table against independent facts, an interrupted sweep
(Ctrl-C, then a killed Ray worker) resumed to the same table, a two-node cluster, the HTML report in
a real browser.

The sweeps run at the "estimate" fidelity on a tiny space (training of two epochs): what is tested
here is the engine, not the flow's stages, which have their own tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qnnflow.explore import explore, load_space
from qnnflow.explore.pareto import front
from qnnflow.explore.units import COMPUTED_LOG

ray = pytest.importorskip("ray")
# one xdist worker runs this module (make test: --dist loadgroup), so the sweep fixture runs once
pytestmark = pytest.mark.xdist_group("explore")

SPACE = """
[explore]
name = "tiny"
dataset = "digits"
fidelity = "estimate"
epochs = 2
objectives = ["accuracy:luts", "jaccard:luts"]

[[grid]]
topology = "digits-cnn"
precision = ["w1a1", "w2a2"]
cycles = [9216, 36864]
board = ["ulx3s-85f", "icebreaker"]

[[grid]]  # a folding target no folding reaches: a result (compile-error), not a failure
topology = "digits-cnn"
precision = "w2a2"
cycles = 1
"""
# the two-node test: two training units (one per precision) and so one per node
TWO_UNITS = """
[explore]
name = "two-units"
dataset = "digits"
fidelity = "estimate"
epochs = 2
objectives = ["accuracy:luts"]

[[grid]]
topology = "digits-cnn"
precision = ["w1a1", "w2a2"]
cycles = 9216
board = "ulx3s-85f"
"""
TABLE_KEYS = ["name", "status", "sw_accuracy", "accuracy", "flips", "jaccard", "ii_estimated", "luts_est", "brams_est"]


def _space(tmp: Path, text: str = SPACE) -> Path:
    path = tmp / "space.toml"
    path.write_text(text)
    return path


def _computed(out: Path) -> list[tuple[str, str]]:
    path = out / "units" / COMPUTED_LOG
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The uninterrupted sweep of the tiny space, on a local Ray instance of 2 CPUs."""
    tmp = tmp_path_factory.mktemp("explore")
    out = tmp / "sweep"
    res = explore(_space(tmp), out, workers=2, say=lambda s: None)
    return out, res


def test_units_are_shared_and_rows_match_the_compiled_graphs(sweep):
    import torch
    from qnnflow.flows.compile.estimates import totals
    from qnnflow.flows.ir.reference import decisions, load_qonnx, run_qonnx
    from qnnflow.models.train import load_checkpoint
    from qonnx.core.modelwrapper import ModelWrapper

    out, res = sweep
    rows = res["rows"]
    assert len(rows) == 9 and [r["status"] for r in rows].count("ok") == 8
    bad = rows[-1]
    assert bad["status"] == "compile-error" and "not reachable" in bad["error"] and bad["luts_est"] is None
    kinds = [k for k, _ in _computed(out)]
    assert kinds.count("train") == 2  # one model per precision, shared by 2 foldings x 2 boards
    assert kinds.count("compile") == 5  # one design per precision and folding, shared by the boards
    for r in rows[:-1]:
        keys = json.loads((out / "points" / r["name"] / "units.json").read_text())
        folder = out / "units" / "compile" / keys["compile"]
        t = totals(ModelWrapper(str(folder / "dataflow.onnx")), "ecp5")  # the estimate, recomputed
        assert (r["luts_est"], r["brams_est"]) == (t["LUT4"], t["DP16KD"])
        assert r["ii_estimated"] <= r["target_cycles"]
        # accuracy and flips against independent references: QONNX execution of the compiled model,
        # and the float twin's own decisions
        x, labels = np.load(folder / "test_inputs.npy"), np.load(folder / "test_labels.npy")
        qonnx = decisions(run_qonnx(load_qonnx(folder / "model.onnx"), x))
        assert r["accuracy"] == float((qonnx == labels).mean())
        twin = load_checkpoint(out / "units" / "train" / keys["train"] / "float_model.pt")
        with torch.no_grad():
            ref = twin(torch.from_numpy(x)).argmax(1).numpy()
        assert r["flips"] == int((qonnx != ref).sum())
    table = pd.read_csv(out / "results.csv")
    assert list(table["name"]) == [p.name for p in load_space(_space(out.parent)).points]
    pd.testing.assert_series_equal(pd.read_parquet(out / "results.parquet")["luts_est"], table["luts_est"])
    # the front printed in the report is the front of the table's rows
    html = res["report"].read_text()
    for r in front(rows, "accuracy", "luts_est"):
        assert r["name"] in html.split("Pareto front:")[1]


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# `python -m qnnflow` with Python's Ctrl-C handler, whatever SIGINT is here: a test run started in the
# background of a script (as the clean-clone runs were) ignores SIGINT, its children inherit that, and
# Python then leaves it ignored -- the sweep would never see the test's Ctrl-C (it finished with code 0).
# A terminal's Ctrl-C goes to a foreground job, which never ignores it
_QNNFLOW = ["-c", "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from qnnflow.cli import main; sys.exit(main())"]  # fmt: skip


def _explore_process(space: Path, out: Path) -> subprocess.Popen:
    """``qnnflow explore`` in its own process group (Ray's processes join it: see _alive_group)."""
    return subprocess.Popen(
        [sys.executable, *_QNNFLOW, "explore", str(space), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie no one reaped has stopped running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _alive_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` still running: the local Ray instance's raylet, GCS, dashboard and
    monitors are in the group of the driver that started them."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # ended meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _running_unit_pid(out: Path, old: set[int]) -> tuple[int, Path] | None:
    """The process of a unit running now (not one of the processes ``old``), and its marker."""
    for path in (out / "units").glob("*/*/running.json"):
        try:
            pid = json.loads(path.read_text())["pid"]
            if pid not in old:
                os.kill(pid, 0)
                return pid, path
        except (OSError, ValueError, KeyError):  # finished meanwhile, or half written
            continue
    return None


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def test_ctrl_c_stops_a_sweep_and_keeps_its_finished_points(sweep, tmp_path):
    """Ctrl-C while a training runs and other points are done: code 130, the points done
    kept and tabled, the running unit and Ray stopped. The w1a1 model's units are copied from the
    fixture's sweep (a resumed sweep), so its 4 points finish at once while w2a2 trains (about 15 s)."""
    ref_out, _ = sweep
    out = tmp_path / "sweep"
    space = _space(tmp_path)
    done = [json.loads(line)["row"] for line in _lines(ref_out / "points.jsonl")]
    early = [r["name"] for r in done if r["precision"] == "w1a1"]
    late = next(r["name"] for r in done if r["precision"] == "w2a2")
    w2a2_train = json.loads((ref_out / "points" / late / "units.json").read_text())["train"]
    assert len(early) == 4
    for name in early:
        for kind, key in json.loads((ref_out / "points" / name / "units.json").read_text()).items():
            if not (out / "units" / kind / key).exists():
                shutil.copytree(ref_out / "units" / kind / key, out / "units" / kind / key)
    marker = out / "units" / "train" / w2a2_train / "running.json"

    def four_points_while_w2a2_trains() -> bool:
        if (marker.parent / "record.json").exists():
            raise AssertionError("the w2a2 training ended before the 4 points of the copied units were recorded")
        return len(_lines(out / "points.jsonl")) >= 4 and marker.is_file()

    proc = _explore_process(space, out)
    try:
        # the copied units are reused only while the package's code is the one the fixture's sweep ran
        _wait_for(four_points_while_w2a2_trains, 120, "the copied units' 4 points, and the w2a2 training")
        worker = json.loads(marker.read_text())["pid"]
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "qnnflow explore: interrupted" in log, log
    names = [json.loads(line)["row"]["name"] for line in _lines(out / "points.jsonl")]
    assert sorted(names) == sorted(early), log
    table = pd.read_csv(out / "results.csv")  # in the space's order
    assert list(table["name"]) == [p.name for p in load_space(space).points if p.name in early]
    # Ray shut down: the interrupted training's worker and the instance's processes are gone
    _wait_for(lambda: not _alive(worker) and not _alive_group(proc.pid), 15, "Ray's processes to end")


@pytest.mark.slow  # make test-all: about a minute (test_ctrl_c_stops_a_sweep... is make test's Ctrl-C test)
def test_interrupted_and_killed_sweep_resumes_to_the_same_table(sweep, tmp_path):
    ref_out, _ = sweep
    out = tmp_path / "sweep"
    space = _space(tmp_path)
    proc = _explore_process(space, out)
    # 1. kill the Ray worker of a unit (a training: there is always one) once it has run for 6 s: Ray
    #    reruns it. The two trainings start together on the 2 CPUs, so the rerun ends well after the
    #    other one, whose points are then recorded while the rerun still runs (step 2's window)
    def running_for_6_s() -> tuple[int, Path] | None:
        got = _running_unit_pid(out, set())
        try:
            return got if got and time.time() - got[1].stat().st_mtime >= 6 else None
        except OSError:  # finished meanwhile
            return None

    pid, killed = _wait_for(running_for_6_s, 240, "a unit running for 6 s")
    os.kill(pid, signal.SIGKILL)
    # 2. Ctrl-C once Ray runs the killed unit again (a new process on its marker, or already its
    #    record) and two points are recorded. Not later: once the rerun is done, its points take a
    #    second, and a sweep that finished cannot be interrupted
    def rerun_and_two_points() -> bool:
        try:
            again = (killed.parent / "record.json").is_file() or json.loads(killed.read_text())["pid"] != pid
        except (OSError, ValueError, KeyError):  # between two runs, or half written
            again = False
        return again and len(_lines(out / "points.jsonl")) >= 2

    _wait_for(rerun_and_two_points, 240, "the killed unit run again by Ray, and two finished points")
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, log
    done_before = [json.loads(line)["row"]["name"] for line in _lines(out / "points.jsonl")]
    assert 2 <= len(done_before) < 9, log
    computed_before = set(_computed(out))
    # 3. resume
    proc = _explore_process(space, out)
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    assert f"{len(done_before)} of 9 points already done" in log
    # no finished point was computed again, and no unit finished before was computed again
    names = [json.loads(line)["row"]["name"] for line in _lines(out / "points.jsonl")]
    assert sorted(names) == sorted(set(names)) and len(names) == 9
    after = _computed(out)
    assert len(after) == len(set(after)), "a finished unit was computed twice"
    assert computed_before <= set(after)
    for name in done_before:
        keys = json.loads((out / "points" / name / "units.json").read_text())
        assert all((kind, key) in computed_before for kind, key in keys.items())
    # the table is the uninterrupted sweep's
    ref = pd.read_csv(ref_out / "results.csv")[TABLE_KEYS]
    got = pd.read_csv(out / "results.csv")[TABLE_KEYS]
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_two_node_cluster_runs_points_on_both_nodes(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        res = explore(_space(tmp_path, TWO_UNITS), tmp_path / "sweep", address=cluster.address, say=lambda s: None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"]
    timings = pd.read_csv(tmp_path / "sweep" / "timings.csv")
    nodes = set(timings["train_node"])
    records = [json.loads(p.read_text()) for p in (tmp_path / "sweep" / "units").glob("*/*/record.json")]
    assert len({r["node"] for r in records}) == 2, "every unit ran on one node"
    assert nodes <= {r["node"] for r in records}


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_html_report_in_headless_chromium(sweep):
    from playwright.sync_api import sync_playwright

    out, res = sweep
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(res["report"].resolve().as_uri())
        assert page.locator("#results tbody tr").count() == len(res["rows"])
        assert page.locator("#count").inner_text() == str(len(res["rows"]))
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == len(res["plots"]) >= 1 and all(w > 0 for w in widths)
        # sorting by a column orders the rows by its numbers
        header = page.locator("#results th", has_text="luts_est")
        header.click()
        col = page.eval_on_selector_all("#results th", "ths => ths.map(t => t.textContent)").index("luts_est")
        values = page.eval_on_selector_all(
            "#results tbody tr", f"rows => rows.map(r => parseFloat(r.cells[{col}].dataset.v))"
        )
        assert values == sorted(values)
        link = page.locator("#results tbody tr a").first.get_attribute("href")
        assert (out / link).is_file()
        browser.close()
    assert errors == []


@pytest.mark.slow
def test_calibrated_points_deploy_the_calibration_choice(tmp_path):
    """Method "calibrated": the build's boundary-aware calibration picks the widths; the point compiles
    exactly the model it chose (make test-all: about a minute)."""
    from qnnflow import stamps

    space = tmp_path / "cal.toml"
    # (the tiny space without its compile-error grid, which this test does not need)
    base = SPACE.split("[[grid]]  # a folding target")[0]
    space.write_text(base.replace('precision = ["w1a1", "w2a2"]', 'precision = "w4a4"\nmethod = "calibrated"')
                     .replace("epochs = 2", "epochs = 2\ncal_max_bits = 4\ncal_min_bits = 3\ncal_mixed = false")
                     .replace('board = ["ulx3s-85f", "icebreaker"]', 'board = "ulx3s-85f"'))  # fmt: skip
    res = explore(space, tmp_path / "sweep", workers=2, say=lambda s: None)
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"]
    for r in res["rows"]:
        keys = json.loads((tmp_path / "sweep" / "points" / r["name"] / "units.json").read_text())
        trained = tmp_path / "sweep" / "units" / "train" / keys["train"]
        choice = json.loads((trained / "calibration" / "calibration.json").read_text())["choice"]
        assert r["deployed"] == choice["name"] and r["accuracy"] == choice["test"]["accuracy"]
        compiled = tmp_path / "sweep" / "units" / "compile" / keys["compile"]
        assert stamps.digest_path(compiled / "model.onnx") == stamps.digest_path(trained / "calibration" / "model.onnx")
