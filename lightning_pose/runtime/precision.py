"""``trainer.precision: auto``: bf16 mixed precision where the hardware computes bf16 natively,
fp32 elsewhere, chosen once at start-up (``lightning_pose.cli.PoseLightningCLI``).

Why by the hardware: on a 2-core AMD EPYC with AVX512-BF16 an EfficientNet-Lite0 training
step ran 1.6-1.8x faster under bf16 autocast than in fp32, while on a CPU without bf16 units
(AVX2 only) oneDNN emulates bf16 and the same step ran ~10x slower (``docs/RESULTS.md``,
"Precision"; ``docs/results/HISTORY.md``, "Compute: precision and FLOPs"). Under Lightning's
``bf16-mixed`` the weights, the optimiser state and the checkpoint stay fp32; only the autocast
region (forward and loss) computes in bf16, so a checkpoint trained so loads, validates,
predicts and exports as any other.

Native bf16 on a CPU means an instruction that multiplies bf16 and accumulates fp32:
AVX512-BF16 (``vdpbf16ps``; Intel Cooper Lake and later, AMD Zen 4 and later) or AMX-BF16
(Intel Sapphire Rapids and later). The flags come from ``torch.cpu.get_capabilities()``
(the cpuinfo library: CPUID and the OS's enabled register state, on every OS). ARM64's bf16
extension is not counted: not measured here, so such CPUs keep fp32.

``auto`` is a training speed lever only: ``validate``, ``test`` and ``predict`` resolve it to
``32-true`` (:func:`evaluation_precision`). On a Zen 4 CPU with AVX512-BF16, bf16 evaluation of
the budget recipe's checkpoint moved keypoints by up to 238 px against fp32 and against the
exported ONNX model (271 of 14,000 LSPet joints by more than 5 px), so the numbers a run
reports and the files it predicts are fp32 unless the user asks for another precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

AUTO = "auto"
# The subcommands that evaluate or predict: ``auto`` means fp32 there.
EVALUATION_SUBCOMMANDS = ("validate", "test", "predict")
# CPU capabilities (torch.cpu.get_capabilities() keys) that compute bf16 natively, best first.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` resolved to and why.

    Attributes:
        precision: a value of Lightning's ``trainer.precision``: ``"bf16-mixed"`` or
            ``"32-true"``.
        reason: one line for the log, e.g. ``"CPU has native bf16 (avx512_bf16)"``.
    """

    precision: str
    reason: str

    def log_line(self) -> str:
        return f"precision {self.precision}: {self.reason}"


def native_bf16_flag(capabilities: Mapping[str, object] | None = None) -> str | None:
    """The CPU feature that computes bf16 natively, or None (bf16 would be emulated).

    Args:
        capabilities: CPU feature name -> bool, as ``torch.cpu.get_capabilities()`` returns
            (the default: this machine's).

    Returns:
        The first of :data:`NATIVE_BF16_FLAGS` that is set (``"amx_bf16"``,
        ``"avx512_bf16"``), else None.
    """
    if capabilities is None:
        capabilities = torch.cpu.get_capabilities()
    return next((flag for flag in NATIVE_BF16_FLAGS if capabilities.get(flag) is True), None)


def cpu_name(capabilities: Mapping[str, object] | None = None) -> str:
    """The CPU's name as cpuinfo reports it (e.g. ``"AMD EPYC"``), else ``"unknown CPU"``."""
    if capabilities is None:
        capabilities = torch.cpu.get_capabilities()
    return str(capabilities.get("cpu_name") or "unknown CPU")


def accelerator_kind(accelerator: object) -> str:
    """``"cpu"``, ``"cuda"`` or another name, for a ``trainer.accelerator`` value as configured
    (``"auto"``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"mps"``, ...; a config namespace or an
    ``Accelerator`` object: its class name, lower case). ``"auto"`` is Lightning's choice for
    the two that matter here: CUDA where a CUDA device is visible, else the CPU (Apple's MPS
    and TPUs, also picked by Lightning's ``auto``, are not looked for: they keep fp32 when
    named)."""
    if accelerator is None or accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(accelerator, str):
        name = accelerator.lower()
        return "cuda" if name == "gpu" else name
    class_path = getattr(accelerator, "class_path", None) or type(accelerator).__name__
    name = str(class_path).rsplit(".", 1)[-1].lower().removesuffix("accelerator")
    return name


def choose_precision(
    accelerator: object = "auto", capabilities: Mapping[str, object] | None = None
) -> PrecisionChoice:
    """Resolve ``trainer.precision: auto`` for ``accelerator`` (a ``trainer.accelerator``
    value, see :func:`accelerator_kind`).

    * CPU: ``bf16-mixed`` if the CPU has :func:`native_bf16_flag`, else ``32-true``;
    * CUDA: ``bf16-mixed`` if ``torch.cuda.is_bf16_supported()`` (Ampere and later), else
      ``32-true``;
    * any other accelerator: ``32-true``.

    Args:
        accelerator: the configured ``trainer.accelerator``.
        capabilities: CPU features as ``torch.cpu.get_capabilities()`` returns (default: this
            machine's).
    """
    kind = accelerator_kind(accelerator)
    if kind == "cpu":
        flag = native_bf16_flag(capabilities)
        name = cpu_name(capabilities)
        if flag is not None:
            return PrecisionChoice("bf16-mixed", f"CPU has native bf16 ({flag}; {name})")
        return PrecisionChoice(
            "32-true", f"CPU has no native bf16 (no {' or '.join(NATIVE_BF16_FLAGS)}; {name})"
        )
    if kind == "cuda":
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no device"
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16-mixed", f"CUDA device supports bf16 ({device})")
        return PrecisionChoice("32-true", f"CUDA device without bf16 support ({device})")
    return PrecisionChoice("32-true", f"accelerator {kind!r}: fp32 (bf16 is picked for CPU/CUDA)")


def evaluation_precision(precision: str, subcommand: str) -> PrecisionChoice:
    """The precision ``subcommand`` (one of :data:`EVALUATION_SUBCOMMANDS`) runs in, for the
    configured ``trainer.precision``: ``auto`` (a training config's speed lever) becomes
    ``32-true``; any other value is the user's explicit choice and is kept.

    Args:
        precision: ``trainer.precision`` as configured (``"auto"``, ``"32-true"``,
            ``"bf16-mixed"``, ...).
        subcommand: ``"validate"``, ``"test"`` or ``"predict"`` (named in the reason).

    Returns:
        The choice; its :meth:`PrecisionChoice.log_line` is logged with the prefix
        ``"evaluation "``: ``"evaluation precision 32-true: ..."``.
    """
    if precision == AUTO:
        return PrecisionChoice(
            "32-true",
            f"{subcommand} runs in fp32; trainer.precision: {AUTO} picks bf16 for training "
            "speed only (ask for another with --trainer.precision, e.g. bf16-mixed)",
        )
    return PrecisionChoice(str(precision), f"{subcommand}: trainer.precision as given")


def compute_record(precision: str, accelerator: object) -> dict[str, str | None]:
    """What trained a checkpoint, in plain types (``checkpoint["pose"]["compute"]``).

    Args:
        precision: the Trainer's precision (``trainer.precision``, e.g. ``"bf16-mixed"``).
        accelerator: the Trainer's accelerator (an ``Accelerator`` object or a name).

    Returns:
        ``{"precision", "accelerator", "cpu", "cpu_native_bf16", "cuda_device"}``: the
        precision, ``"cpu"``/``"cuda"``/..., the CPU's name, its native-bf16 feature (None:
        none) and the CUDA device's name where the accelerator is CUDA (else None).
    """
    kind = accelerator_kind(accelerator)
    cuda = torch.cuda.get_device_name() if kind == "cuda" and torch.cuda.is_available() else None
    return {
        "precision": str(precision),
        "accelerator": kind,
        "cpu": cpu_name(),
        "cpu_native_bf16": native_bf16_flag(),
        "cuda_device": cuda,
    }
