"""Where a model comes from: a local folder, or a Hugging Face Hub id through the Hub's cache.

`resolve_model` is what every command that takes `--model` calls (train, eval, select, export,
and `rollout.load_model` beneath them), so a spec means the same thing everywhere:
- empty: the shipped organism;
- an existing folder: that folder (a file is refused: a model is a folder);
- something that reads as a path (`./x`, `/x`, `~/x`, `a/b/c`, or `runs/x` when `runs/` is a
  local folder) but does not exist: a missing folder, never looked up on the Hub;
- otherwise a Hub id (`Qwen/Qwen2.5-Math-1.5B`), resolved as transformers resolves one: from the
  Hub when it is reachable (downloaded into the cache, or the cached copy when up to date),
  from the cache when it is not (`HF_HUB_OFFLINE=1`, or no network). Neither → one line that
  says what was tried and the command that downloads the model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rlvr.core.net import hub_endpoint, hub_offline, reachable
from rlvr.errors import UserError

__all__ = ["local_folder", "looks_like_path", "model_path", "resolve_model"]

# A Hub repo id: `name` or `namespace/name` (letters, digits, `-`, `_`, `.`).
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")
# What a model needs from a repo; a repo's other files (original checkpoints, .bin copies
# next to safetensors, GGUF) are not downloaded.
_MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def resolve_model(spec: str | os.PathLike | None, *, flag: str = "--model") -> Path:
    """The local folder of a model spec (see the module docstring); raises UserError."""
    text = "" if spec is None else str(spec).strip()
    if not text:
        from rlvr.organism import default_path

        return Path(default_path())
    return local_folder(text, flag=flag) or _from_hub(text, flag)


def model_path(path: str) -> Path:
    """A config's `model.path` as a folder, without looking it up: "" is the shipped organism
    (a spec that may be a Hub id goes through `resolve_model`, as `load_model` does)."""
    if path:
        return Path(path)
    from rlvr.organism import default_path

    return Path(default_path())


def local_folder(spec: str, *, flag: str = "--model") -> Path | None:
    """The existing folder `spec` names, or None for a Hub id; a file, or a path that does not
    exist, is a UserError (without looking at the Hub or its cache)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        folder = "the folder holding it" if path.name == "config.json" else "a model folder"
        raise UserError(f"{flag} {spec} is a file, not a model folder",
                        f"pass {folder} (config.json, weights and tokenizer files)")
    if looks_like_path(spec):
        raise UserError(f"model folder {spec} does not exist",
                        f"check the path, or pass {flag} ORG/NAME for a Hugging Face Hub model")
    return None


def looks_like_path(text: str) -> bool:
    """True when `text` can only be a file-system path, not a Hub id."""
    if text.startswith((".", "/", "~")) or text.endswith("/") or "\\" in text:
        return True
    if not _HUB_ID.match(text) or "--" in text or ".." in text:
        return True
    head, sep, _ = text.partition("/")
    # `runs/x` next to a `runs/` folder is a path even though it is shaped like `org/name`.
    return bool(sep) and Path(head).is_dir()


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def _from_hub(repo: str, flag: str) -> Path:
    cache = _cache_dir()
    cached = _cached_snapshot(repo, cache)
    if hub_offline() or not reachable(hub_endpoint()):
        if cached is not None:
            return cached
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hub is unreachable"
        raise UserError(f"{flag} {repo}: no such local folder, not in the Hugging Face cache "
                        f"({cache}), and {why}",
                        f"run `hf download {repo}` where the Hub is reachable and copy the "
                        "cache here, or pass a local model folder")
    return _download(repo, cache, flag, cached)


def _cached_snapshot(repo: str, cache: Path) -> Path | None:
    """The cached snapshot of the repo's default branch, when it holds config and weights."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, cache_dir=cache, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None
    return folder if _complete(folder) else None


def _complete(folder: Path) -> bool:
    weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    return (folder / "config.json").is_file() and weights


def _download(repo: str, cache: Path, flag: str, cached: Path | None) -> Path:
    """The up-to-date snapshot, downloaded as needed; the cached one when the download fails on
    the network (as transformers falls back to its cache)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = Path(snapshot_download(repo, cache_dir=cache, allow_patterns=_MODEL_FILES))
        if not _complete(folder):  # an older repo with PyTorch .bin weights only
            folder = Path(snapshot_download(repo, cache_dir=cache,
                                            allow_patterns=[*_MODEL_FILES, "*.bin"]))
    except GatedRepoError as exc:
        raise UserError(f"{flag} {repo} is gated on the Hugging Face Hub",
                        "accept its terms on the model page, then `hf auth login`") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise UserError(f"{flag} {repo}: no such local folder and no such model on the Hugging "
                        "Face Hub", "check the spelling, or `hf auth login` for a private "
                        "model") from exc
    except (HfHubHTTPError, OSError) as exc:
        if cached is not None:
            return cached
        raise UserError(f"{flag} {repo}: download from the Hugging Face Hub failed "
                        f"({type(exc).__name__})",
                        f"retry, or `hf download {repo}` and pass the folder") from exc
    if not _complete(folder):
        raise UserError(f"{flag} {repo} has no config.json with weights on the Hub",
                        "pass a Hugging Face causal LM repository")
    return folder
