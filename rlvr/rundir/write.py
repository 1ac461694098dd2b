"""Run directories: atomic file writes, the resolved config with versions, per-line logs.

Layout (docs/run-format.md):
    runs/<name>/config.toml, metrics.jsonl, samples.jsonl, checkpoints/step-N/,
    eval/step-N/<suite>.jsonl, eval/step-N/summary.json

Everything that must never be seen half-written (checkpoints, summaries, configs) goes through
`atomic_write_*` or `atomic_dir`: write beside the target, fsync, then `os.replace`, so a
process killed mid-write leaves either the old file or none, never a loadable fragment.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from rlvr.errors import UserError

__all__ = [
    "append_jsonl",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fresh_run_dir",
    "is_scratch",
    "new_run_dir",
    "read_jsonl",
    "versions",
    "write_config_toml",
]

_TRACKED_PACKAGES = (
    "rlvr", "torch", "transformers", "tokenizers", "safetensors", "math-verify", "sympy",
    "numpy", "trl", "verl", "vllm",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: a run file is for collaborators
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch folder that becomes `final` only if the block finishes.

    An existing `final` is replaced as a whole (used for checkpoints: step-N is either the old
    complete one or the new complete one).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
        yield tmp
        _fsync_tree(tmp)
        if final.exists():
            trash = final.with_name(f".{final.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    # The only portable way to read the umask is to set it; put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_scratch(name: str) -> bool:
    """A name `atomic_write_*` / `atomic_dir` use while writing (`.NAME.XXXX.tmp`, `.NAME.old`)."""
    return name.startswith(".") and name.endswith((".tmp", ".old"))


def _fsync_tree(root: Path) -> None:
    """fsync every file, and give each the mode the umask gives a new file (an executable
    stays executable): some writers (safetensors) create theirs 0600, which collaborators on
    a shared disk cannot read."""
    mask = _umask()
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod((0o777 if path.stat().st_mode & 0o111 else 0o666) & ~mask)
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        elif path.is_dir():
            path.chmod(0o777 & ~mask)


def append_jsonl(path: str | os.PathLike, record: dict, *, fsync: bool = False) -> None:
    """Append one line and flush it, so partial results survive a crash."""
    line = json.dumps(record, sort_keys=False, default=str, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a jsonl file; a torn last line (a killed writer) is dropped, anything else is an error."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return records


def new_run_dir(path: str | os.PathLike, *, resume: bool = False,
                resumable: bool = False) -> Path:
    """Create a run directory; refuse to mix two runs in one folder unless resuming.

    `resumable`: the command has a --resume flag, so the refusal may offer it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} exists and is not a folder", "choose another --out")
    if path.exists() and any(path.iterdir()) and not resume:
        raise UserError(
            f"run directory {path} already exists and is not empty",
            "choose another --out or delete it"
            + (", or pass --resume to continue that run" if resumable else ""),
        )
    if resume and not path.exists():
        raise UserError(f"cannot resume: {path} does not exist", "drop --resume to start a new run")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def fresh_run_dir(path: str | os.PathLike, *, keep: Callable[[], bool] = lambda: False,
                  resumable: bool = False) -> Iterator[Path]:
    """A new run directory for the block; if the block fails, what it created is removed.

    A command that stops early (a user mistake found late, Ctrl-C) leaves no half run behind
    for the next command to trip on. `keep()` is asked first: a training run that has logged
    steps is kept, since `--resume` continues it.
    """
    path = Path(path)
    top = path  # the outermost folder this call creates (it may create parents too)
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    existed = path.exists()
    run_dir = new_run_dir(path, resumable=resumable)
    try:
        yield run_dir
    except BaseException:
        if not keep():
            if existed:  # an empty folder the user made: leave it empty, as it was
                for child in path.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            else:
                shutil.rmtree(top, ignore_errors=True)
        raise


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    # the RLVR_* switches a run was started with: some change numbers (RLVR_HALF_CACHE=0 keeps
    # the decode cache in fp32), so the record of what ran names them
    switches = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("RLVR_"))
    if switches:
        found["rlvr_switches"] = " ".join(switches)
    return found


def write_config_toml(path: str | os.PathLike, config: dict, *, seed: int) -> None:
    """Write the resolved config, the seed and the package versions: the record of what ran."""
    import tomli_w  # here, not at import: a bare GPU image (benchmarks/gpu_check.py) lacks it

    document = {"seed": seed, **_toml_safe(config), "versions": versions()}
    atomic_write_text(path, tomli_w.dumps(document))


def _toml_safe(value: Any) -> Any:
    # TOML has no null: drop None so the file stays loadable and "unset" stays unset.
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value if v is not None]
    if isinstance(value, Path):
        return str(value)
    return value
