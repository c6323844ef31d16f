import subprocess

import pytest

from qnnflow import toolchain
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
