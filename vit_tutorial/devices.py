"""Notebooks 05 and 09: where a model runs and in what precision, and how to say so honestly.

This module picks the device (a CUDA GPU, Apple's ``mps``, or the CPU), decides whether
mixed precision pays there (bf16 on GPUs that have it, fp16 with loss scaling on older
ones, fp32 on CPUs unless they do bf16 natively), and names the hardware in one line for
every timing the series reports: the same training recipe ran twice as fast on a CPU
with AVX-512 as on one without, so a time without its machine means little.
It knows nothing about models or training.
"""
from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch

AMP_MODES = ("auto", "off", "bf16", "fp16")


def pick_device(requested: str | None = None) -> torch.device:
    """``cuda`` if present, else Apple's ``mps``, else ``cpu``; or check the one asked for."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not _mps_available():
        raise ValueError("device 'mps' was asked for but Apple's Metal backend is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 math (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except RuntimeError:
                pass
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_avx512() -> bool:
    """Whether PyTorch's CPU kernels run with AVX-512 here (the widest vectors x86 CPUs have)."""
    capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    if capability is not None:
        return "AVX512" in capability()
    return " avx512f" in _cpu_flags()


_AMD_ZEN = {23: "Zen 2", 26: "Zen 5"}  # AMD CPU family -> core generation (25 is Zen 3 or Zen 4)


def cpu_name() -> str:
    """The CPU's model name, for honest timing reports.

    Virtual machines often report a bare "AMD EPYC", which hides a 2x difference between core
    generations; the CPU family is added then (family 25 is Zen 3 or Zen 4: AVX-512 tells them apart).
    """
    info = {}
    for line in _cpu_flags().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    name = info.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    family = info.get("cpu family", "")
    if name.startswith("AMD") and family.isdigit() and len(name.split()) <= 2:
        if family == "25":  # the CPU's own flags, not PyTorch's kernel choice (cpu_has_avx512)
            gen = "Zen 4" if "avx512f" in info.get("flags", "").split() else "Zen 3"
        else:
            gen = _AMD_ZEN.get(int(family), f"family {family}")
        name = f"{name} ({gen})"
    return name


def device_name(device: str | torch.device | None = None) -> str:
    """One line naming the hardware behind ``device``: the GPU's name, or the CPU's with its threads
    and whether it has AVX-512. Every time and speed the series reports carries this line."""
    dev = pick_device(str(device) if device is not None else None)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return "Apple GPU (mps)"
    threads = torch.get_num_threads()
    return (f"{cpu_name()}, {threads} thread{'' if threads == 1 else 's'}, "
            f"{'with' if cpu_has_avx512() else 'no'} AVX-512")


def cuda_has_native_bf16(device: torch.device | None = None) -> bool:
    """Whether the GPU does bf16 in hardware: compute capability 8.0 (Ampere) or later.

    Why not ``torch.cuda.is_bf16_supported()``: by default it also says yes where bf16 is only
    *emulated* (its ``including_emulation=True``), as on a free Colab T4 (capability 7.5). There
    bf16 matrix products run on the slow path, while fp16 with a gradient scaler uses the tensor
    cores the T4 has; so ``amp="auto"`` must ask about the hardware.
    """
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def host_to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Copy a CPU tensor to ``device`` without making the CPU wait for the GPU.

    A copy from ordinary (pageable) memory to a CUDA GPU first waits until the GPU has finished
    everything queued before it; done a few times per training step (the random draws of the
    augmentation), that stops the CPU from queueing the next step while the GPU computes this one.
    From pinned memory the copy is queued like a kernel (``non_blocking=True``) and nothing waits.
    PyTorch keeps the pinned buffer alive until the copy has run. Elsewhere this is ``t.to(device)``.
    """
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or ``None`` for full fp32.

    ``auto``: bf16 on GPUs that have it in hardware (:func:`cuda_has_native_bf16`), fp16 (with a
    gradient scaler) on older GPUs such as the T4, fp32 on CPU and MPS. ``bf16`` on a CPU is allowed only where it is native.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16":
            return torch.float16
        if amp == "bf16" and not cuda_has_native_bf16(device):
            raise ValueError(f"{torch.cuda.get_device_name(device)} has no native bf16 (it needs compute capability "
                             f"8.0 or later); use --amp fp16 or --amp auto")
        return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16
    if device.type == "cpu":
        if amp == "bf16":
            if not cpu_supports_bf16():
                raise ValueError("this CPU has no native bf16 (AVX512-BF16/AMX); use --amp off")
            return torch.bfloat16
        if amp == "fp16":
            raise ValueError("fp16 autocast is for GPUs; on a CPU use --amp bf16 (where supported) or off")
        return None
    # mps
    if amp == "auto":
        return None
    return torch.float16 if amp == "fp16" else torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` in ``dtype`` on ``device``, or a no-op context for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool):
    """fp16 needs loss scaling (its range is small); bf16 and fp32 do not."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled and device.type == "cuda")


__all__ = ["AMP_MODES", "pick_device", "cuda_has_native_bf16", "host_to_device", "cpu_supports_bf16", "cpu_has_avx512", "cpu_name", "device_name",
           "resolve_amp", "autocast", "grad_scaler"]
