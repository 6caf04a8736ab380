"""How long a local training run takes: from FLOPs and a GPU table, or from earlier runs.

Uncalibrated: training FLOPs ≈ 6 × parameters × tokens (forward and backward through the
frozen base with gradient checkpointing, as LoRA runs do), divided by the hardware's peak
dense throughput times a utilisation. Calibrated: the last finished run of the same model on
the same hardware measured its training throughput and its fixed start-up time (imports,
loading, saving), and the estimate scales those to the new token count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.errors import InvalidInput

FLOPS_PER_PARAMETER_TOKEN = 6


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_tflops: float  # dense BF16/FP16 tensor throughput (per core for the CPU)
    utilisation: float  # the share of peak a LoRA fine-tune typically reaches
    source: str


HARDWARE: dict[str, Hardware] = {h.name: h for h in (
    Hardware("T4", 65, 0.30, "NVIDIA T4 datasheet: 65 TFLOPS FP16 tensor"),
    Hardware("A10", 125, 0.35, "NVIDIA A10 datasheet: 125 TFLOPS BF16 tensor, dense"),
    Hardware("V100", 125, 0.35, "NVIDIA V100 SXM2 datasheet: 125 TFLOPS FP16 tensor"),
    Hardware("A100", 312, 0.40, "NVIDIA A100 datasheet: 312 TFLOPS BF16 tensor, dense"),
    Hardware("H100", 989, 0.35, "NVIDIA H100 SXM datasheet: 989 TFLOPS BF16 tensor, dense (1,979 sparse)"),
    Hardware("RTX 4090", 165, 0.35, "NVIDIA Ada whitepaper: 165.2 TFLOPS FP16 tensor with FP32 accumulate"),
    Hardware("Apple M-series", 14, 0.30, "Apple M2/M3 Max GPU: about 13.6-14.2 TFLOPS FP32"),
    Hardware("CPU", 0.096, 0.10, "x86-64 with AVX2: 2 FMA units x 8 FP32 lanes x 2 FLOPs x 3 GHz = 96 GFLOPS "
                                 "per core"),
)}  # fmt: skip


def hardware(name: str) -> Hardware:
    found = HARDWARE.get(name) or next((h for h in HARDWARE.values() if h.name.lower() == name.lower()), None)
    if found is None:
        raise InvalidInput(f"Unknown hardware {name!r}: use one of {', '.join(HARDWARE)}.")
    return found


@dataclass(frozen=True)
class Calibration:
    """What one finished run measured."""

    tokens: int
    train_seconds: float
    wall_seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else math.inf

    @property
    def startup_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.train_seconds)


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    method: str  # "flops" or "calibrated"
    training_flops: float | None
    hardware: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"seconds": round(self.seconds, 3), "method": self.method, "training_flops": self.training_flops,
                "hardware": self.hardware, "detail": self.detail}  # fmt: skip


def estimate_training_time(
    *, parameters: int, tokens: int, epochs: float, hardware_name: str, cores: int = 1,
    calibration: Calibration | None = None,
) -> TimeEstimate:  # fmt: skip
    if parameters <= 0 or tokens < 0 or epochs <= 0:
        raise InvalidInput("parameters and epochs must be positive and tokens 0 or more.")
    hw = hardware(hardware_name)
    trained = tokens * epochs
    if calibration is not None and calibration.tokens > 0:
        seconds = calibration.startup_seconds + trained / calibration.tokens_per_second
        return TimeEstimate(seconds, "calibrated", None, hw.name,
                            f"{calibration.tokens_per_second:,.0f} tokens/s measured by an earlier run, plus "
                            f"{calibration.startup_seconds:.1f} s of start-up")  # fmt: skip
    flops = FLOPS_PER_PARAMETER_TOKEN * parameters * trained
    peak = hw.peak_tflops * 1e12 * (max(1, cores) if hw.name == "CPU" else 1)
    seconds = flops / (peak * hw.utilisation)
    return TimeEstimate(seconds, "flops", flops, hw.name,
                        f"6 x {parameters:,} parameters x {trained:,.0f} tokens / ({peak / 1e12:g} TFLOPS x "
                        f"{hw.utilisation:.0%} utilisation); {hw.source}")  # fmt: skip
