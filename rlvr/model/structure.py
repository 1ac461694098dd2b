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
from itertools import chain
from operator import is_

__all__ = ["cached"]

# model → (slots, {name: value})
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _slots(model) -> tuple[list, list, list]:
    """Every `_modules` and `_parameters` table under `model`, the keys of each (so that an
    added, removed or renamed entry shows) and all their values in order (so that a replaced
    module or parameter shows)."""
    tables = [table for module in model.modules()
              for table in (module._modules, module._parameters)]
    return tables, [tuple(table) for table in tables], list(chain.from_iterable(
        table.values() for table in tables))


def _same(slots: tuple[list, list, list]) -> bool:
    # map/chain run in C: this check runs on every scoring call (~250 entries on the organism)
    tables, keys, values = slots
    return (list(map(tuple, tables)) == keys
            and all(map(is_, chain.from_iterable(map(dict.values, tables)), values)))


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
