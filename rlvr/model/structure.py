"""Facts derived from a model's module tree, kept while that tree stays the same objects.

The scoring path asks several such questions on every call (does the fast forward reproduce
this model, which parameters feed the fused products): walking a Hugging Face model's
attributes through `nn.Module.__getattr__` costs ~0.2 ms per question on the organism, as long
as a tenth of its whole update. `cached(model, name, compute)` answers from a cache that is
checked against every module and parameter slot of the model (a dict lookup each): a swapped
module (an adapter), a replaced parameter or a new submodule gives a fresh answer. Values
read at call time (parameter data, environment switches) must stay outside `compute`.
"""

from __future__ import annotations

import weakref

__all__ = ["cached"]

# model → (slots, {name: value})
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _slots(model) -> list[tuple]:
    """(table, key, object) for every submodule and parameter slot under `model`, and
    (table, None, size) for each table, so that an added entry shows too."""
    out = []
    for module in model.modules():
        for table in (module._modules, module._parameters):
            out.append((table, None, len(table)))
            out += [(table, key, value) for key, value in table.items()]
    return out


def _same(slots: list[tuple]) -> bool:
    return all((table.get(key) is value) if key is not None else len(table) == value
               for table, key, value in slots)


def cached(model, name: str, compute):
    """`compute(model)`, recomputed only when a module or parameter of `model` was replaced,
    added or removed since it was last computed."""
    entry = _CACHE.get(model)
    if entry is None or not _same(entry[0]):
        entry = (_slots(model), {})
        _CACHE[model] = entry
    values = entry[1]
    if name not in values:
        values[name] = compute(model)
    return values[name]
