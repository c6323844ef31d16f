"""The ``finn`` benchmark's options and table (the benchmark itself runs in ``make bench``)."""

from __future__ import annotations

import pytest

from qnnflow import bench
from qnnflow.bench import finn


def test_finn_is_registered_with_its_options(capsys) -> None:
    assert "finn" in bench.BENCHMARKS
    with pytest.raises(SystemExit):
        bench.main(["--only", "finn", "--designs", "lfc-w1a1"])
    assert "invalid choice: 'lfc-w1a1'" in capsys.readouterr().err
    # FINN's published figures as finn-examples and BNN-PYNQ give them
    assert finn.FINN_PUBLISHED["tfc-w1a1"]["images_per_s"] == 837_019
    assert finn.FINN_PUBLISHED["cnv-w1a1"]["ii_bound_images_per_s"] == 3_052
    cnv2 = finn.FINN_PUBLISHED["cnv-w2a2"]
    assert (cnv2["xc7z020_lut"], cnv2["xc7z020_bram36_tiles"]) == (37_302, 140)


def test_table_shows_measured_beside_published() -> None:
    row = {
        "design": "tfc-w1a1",
        "compile": {"folding": "finn:tfc", "ii_estimated": 64},
        "sim": {"ii_measured": 64, "bit_exact": True, "frames": 8, "mismatches": 0,
                "codegen_fifo_sizing_seconds": 52.4},  # fmt: skip
        "xc7z020": {"LUT6": 12_345, "FF": 6_789, "BRAM18": 3},
        "ecp5": {"error": "the design does not fit on LFE5U-85F"},
        "finn_published": finn.FINN_PUBLISHED["tfc-w1a1"],
    }
    md = finn.markdown({"rows": [row], "finn_published_not_built": finn.FINN_NOT_BUILT, "caveats": ["c1"]})
    assert "| tfc-w1a1 | finn:tfc | 64 | 64 | yes (8 frames) | 52 | 12,345 / 6,789 / 3 | error | error | error |" in md
    assert "| tfc-w1a1 | 837,019 | 1,562,500 | - | - | [1] |" in md
    assert "| LFC-W1A1 | - | - | 28,360 | 110 | [2] |" in md
    assert "[1] finn-examples (bnn-pynq), measured on a Pynq board at 100 MHz" in md
    assert md.rstrip().endswith("- c1")
