"""The one loader of frozen dataclass configs: run configs (`rlvr.rl.config`) and the organism's
build config (`rlvr.organism.config`) are read from TOML and dicts by the same code.

Values are coerced to the field's annotation (an int is accepted where a float is expected,
lists become tuples); an unknown key names itself and lists the valid ones; `Literal` choices
are checked by `check_literals`, which each dataclass calls from `__post_init__` so a config
built in Python is validated the same way. A `dict` field must be a table; its values are the
dataclass's to validate (the organism's mode mixes give their own, more precise, errors).
`key=value` assignments (`--set`) are read against the field's annotation, as the flags read
theirs: a text field takes the text as typed (`reward.label=12.70` is the label "12.70"), a
list takes `a,b` or a TOML list, everything else is a TOML value.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from rlvr.errors import UserError

__all__ = ["build", "check_literals", "config_key", "field_hint", "load_toml", "merge",
           "parse_assignments"]


def check_literals(obj: Any) -> None:
    """Validate every `Literal` field of a config dataclass (called from `__post_init__`)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints[f.name]
        if typing.get_origin(hint) is Literal:
            value = getattr(obj, f.name)
            if value not in typing.get_args(hint):
                valid = ", ".join(map(str, typing.get_args(hint)))
                raise UserError(f"{config_key(obj, f.name)} = {value!r} is not one of: {valid}")


def config_key(obj: Any, name: str) -> str:
    """The key a user writes (`reward.mode`), not the class (`RewardConfig.mode`): the section
    is the class name without `Config`; the top-level class's fields stand alone."""
    section = type(obj).__name__.removesuffix("Config").lower()
    return name if section in ("train", "build") else f"{section}.{name}"


def build(cls: type, data: Any, where: str = "", *, noun: str = "config key") -> Any:
    """`cls(**data)` with every value coerced to its field's type; nested tables recurse."""
    if not isinstance(data, dict):
        raise UserError(f"[{where}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise UserError(f"unknown {noun} {prefix}{unknown[0]}",
                        f"valid keys{' in [' + where + ']' if where else ''}: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k, noun)
              for k, v in data.items()}
    return cls(**kwargs)


def field_hint(cls: type, path: list[str]) -> Any:
    """The annotation of the field at `path` below `cls`, or None when no such field exists."""
    hint: Any = cls
    for part in path:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return None
        hints = typing.get_type_hints(hint)
        if part not in hints or part not in {f.name for f in dataclasses.fields(hint)}:
            return None
        hint = hints[part]
    return hint


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any, where: str, noun: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where, noun)
            except UserError:
                continue
        raise UserError(f"{where} = {value!r} has the wrong type (expected {hint})")
    if origin is Literal:
        return value  # checked by __post_init__ with the valid choices listed
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item_hints = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_hints) != len(value):
            raise UserError(f"{where} must have {len(item_hints)} items, got {value!r}")
        return tuple(_coerce(v, h, where, noun) for v, h in zip(value, item_hints, strict=True))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, noun=noun)
    raise UserError(f"{where} = {value!r} has the wrong type: must be {_type_name(hint)}")


def merge(base: dict, over: dict) -> dict:
    """`over` laid on `base`, tables merged key by key (neither argument is changed)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_toml(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {path} is not valid TOML ({exc})") from exc


def parse_assignments(items: list[str], cls: type, *,
                      unknown: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """`["algo.kl_coef=0.01", "data.examples=a,b"]` → a nested dict for `build(cls, ...)`.

    `unknown(key)` may answer a key that is not a field of `cls` with a one-line `UserError`
    message (e.g. the rlvr name of another engine's key); other unknown keys are left for
    `build` to report with the valid ones.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise UserError(f"--set {item!r} is not key=value", "e.g. --set optim.lr=1e-5")
        path = key.split(".")
        hint = field_hint(cls, path)
        if hint is None and unknown is not None and (answer := unknown(key)):
            raise UserError(answer)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_value(raw, hint)
    return out


def _toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word is a string: --set reward.mode=format


def _is_text(hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_text(a) for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is Literal:
        return all(isinstance(a, str) for a in typing.get_args(hint))
    return hint is str


def _parse_value(raw: str, hint: Any) -> Any:
    value = _toml_value(raw)
    if hint is None:
        return value
    if _is_text(hint):
        return value if isinstance(value, str) else raw
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args[-1] is Ellipsis and _is_text(args[0]):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        return [part.strip().strip("'\"") for part in inner.split(",") if part.strip()]
    if typing.get_origin(hint) is tuple and not isinstance(value, list) and "," in raw:
        # `log.eval_steps=5,20` (and a pair such as `optim.betas=0.9,0.99`): the comma form
        # text lists take, each part read as the TOML value it is.
        return [_toml_value(part.strip()) for part in raw.split(",") if part.strip()]
    if typing.get_origin(hint) is tuple and args[-1] is Ellipsis and not isinstance(value, list):
        return [value]  # one item of a list of any length: `log.eval_steps=5`
    return value
