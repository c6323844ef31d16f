"""``python -m qnnflow.sim.runner``: --list without a case; no case is a usage error."""

from __future__ import annotations

import pytest
from qnnflow.sim import cases
from qnnflow.sim.runner import main


def test_list_needs_no_case(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == [c.full_id for c in cases.all_cases()]
    assert "sliding_window/k1-s1-p0-w3-three-beat-rows" in listed


def test_no_case_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "give a case id" in capsys.readouterr().err
