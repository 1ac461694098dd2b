"""Checks that run before a command writes anything: the device, the model's weight files.

A command validates everything it needs before its run folder exists, so a mistake costs one
line on stderr and leaves nothing behind (docs/reliability.md). These are the checks whose
failures would otherwise surface deep inside torch or safetensors as a traceback.
"""

from __future__ import annotations

from pathlib import Path

from rlvr.errors import UserError

__all__ = ["check_device", "check_weights"]


def check_device(device: str | None) -> str:
    """The device to use: `device` if this machine has it, else a UserError; None → the best."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise UserError(f"unknown device {device!r}", "use cpu, cuda or cuda:N") from exc
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "without CUDA" if torch.version.cuda is None else "with CUDA, but sees no GPU"
            raise UserError(f"device {device!r} is not available: this torch is built {build}",
                            "run on cpu, or on a machine with a CUDA GPU and a CUDA build of torch")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} is not available: "
                            f"{torch.cuda.device_count()} CUDA device(s) visible")
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {device!r} is not available on this machine", "run on cpu")
    elif kind not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {device!r} is not supported", "use cpu, cuda or cuda:N")
    return device


def check_weights(folder: str | Path) -> None:
    """Every safetensors file in a model folder has a readable header (read only the header)."""
    from safetensors import safe_open

    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # SafetensorError, OSError: the file is not usable weights
            raise UserError(f"{path} is not a valid safetensors file ({_first_line(exc)})",
                            "re-download or re-save the model") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
