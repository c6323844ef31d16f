import pytest

from qnnflow.config import Board, BuildConfig, SimMode


def test_toml_roundtrip(tmp_path):
    cfg = BuildConfig(
        name="x",
        preset="tfc-w1a1",
        data_dir=tmp_path,
        board=Board.ICEBREAKER,
        clock_mhz=24.0,
        sim_mode=SimMode.COCOTB,
        target_cycles=1000,
    )
    path = cfg.write(tmp_path / "build")
    assert path.name == "config.toml"
    assert BuildConfig.load(path) == cfg


def test_bad_config_values_are_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('board = "de10-nano"\n')
    expected = r"board must be one of ulx3s-85f, orangecrab-25f, icebreaker, tangnano20k, not 'de10-nano'"
    with pytest.raises(ValueError, match=expected):
        BuildConfig.load(path)
    path.write_text("clokc_mhz = 12\n")
    with pytest.raises(ValueError, match=r"unknown keys \['clokc_mhz'\]"):
        BuildConfig.load(path)
    path.write_text("clock_mhz = = 1\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        BuildConfig.load(path)
    with pytest.raises(ValueError, match="clock_mhz must be positive, not -5"):
        BuildConfig(clock_mhz=-5)
    for switch in ("xilinx_estimate", "system_tools", "ana_staggered"):  # every bool field, not a truthy string
        path.write_text(f'{switch} = "no"\n')
        with pytest.raises(ValueError, match=f"{switch} must be true or false, not 'no'"):
            BuildConfig.load(path)
    with pytest.raises(TypeError, match="xilinx_estimate must be true or false, not 0"):
        BuildConfig(xilinx_estimate=0)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="build config not found"):
        BuildConfig.load(tmp_path / "none.toml")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        BuildConfig().clock_mhz = 10  # type: ignore[misc]
