"""Grouped results: accuracy per value of a suite's grouping columns.

A suite's rows may carry columns that split it: an organism-style `family`, MATH500's `subject`
and `level` (`GROUP_COLUMNS`, kept whenever present), or any column named with `--group-by`.
The suite reader keeps them in `Problem.meta`, evaluation copies them into each record's
`groups`, and the suite summary gets `groups: {column: {value: {n_items, acc_strict,
ci_strict, acc_lenient}}}` over the headline pass (the samples when there are any, else
greedy), which `rlvr eval`, the training-time evaluation and the report print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rlvr.data.suites import GROUP_COLUMNS

__all__ = ["GROUP_COLUMNS", "group_accuracy", "group_cells", "group_rows", "group_tables",
           "record_groups"]


def record_groups(problem, extra: Sequence[str] = ()) -> dict[str, str]:
    """The grouping values of one problem: every grouping column its row has."""
    return {column: _value(problem.meta[column]) for column in (*GROUP_COLUMNS, *extra)
            if problem.meta.get(column) not in (None, "")}


def _value(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def group_accuracy(records: Sequence[dict], *, seed: int = 0) -> dict:
    """{column: {value: {n_items, acc_strict, ci_strict, acc_lenient}}} over the records'
    `groups` (the headline pass's records: the samples when there are any, else greedy).
    `ci_strict` is the 95% interval of `acc_strict` by a bootstrap over the group's items
    (rlvr.core.stats; an item's samples stay together), seeded by `seed`."""
    from rlvr.core.stats import item_accuracy

    buckets: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        for column, value in (r.get("groups") or {}).items():
            buckets.setdefault(column, {}).setdefault(str(value), []).append(r)
    out: dict = {}
    for column, values in buckets.items():
        out[column] = {}
        for value, rows in sorted(values.items(), key=lambda kv: _natural(kv[0])):
            items: dict[str, list[bool]] = {}
            for r in rows:
                items.setdefault(r["id"], []).append(bool(r["correct_strict"]))
            strict = item_accuracy(list(items.values()), seed=seed)
            out[column][value] = {"n_items": len(items), "acc_strict": strict.value,
                                  "ci_strict": [strict.low, strict.high],
                                  "acc_lenient": _mean(r["correct_lenient"] for r in rows)}
    return out


def _natural(value: str):
    """Sort key: numbers by value (level 2 before level 10), then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0


def group_tables(summary: Mapping) -> list:
    """One rich table per suite and grouping column with more than one value (a single value
    would repeat the suite's own row)."""
    return [_table(name, column, values)
            for name, stats in summary.get("suites", {}).items()
            for column, values in (stats.get("groups") or {}).items() if len(values) > 1]


def _table(suite: str, column: str, values: Mapping):
    from rich.table import Table

    table = Table(title=f"{suite} by {column}", caption="accuracy in %; strict with its 95% "
                  "interval over the group's items")
    for header in (column, "n", "strict", "95% interval", "lenient"):
        table.add_column(header, justify="left" if header == column else "right", no_wrap=True)
    for value, g in values.items():
        table.add_row(*group_cells(value, g))
    return table


def group_rows(label: str, summary: Mapping) -> list[tuple[str, ...]]:
    """(label, suite, column, value, n, strict, interval, lenient) for every grouping column
    with more than one value in an evaluation summary: the report's rows for one evaluation."""
    return [(label, name, column, *group_cells(value, g))
            for name, stats in summary.get("suites", {}).items()
            for column, values in (stats.get("groups") or {}).items() if len(values) > 1
            for value, g in values.items()]


def group_cells(value: str, g: Mapping) -> tuple[str, ...]:
    """value, n, strict, its interval, lenient: one group's row (rlvr eval and the report)."""
    low, high = (g.get("ci_strict") or [None, None])[:2]
    interval = "—" if low is None or high is None else f"{_pct(low)}–{_pct(high)}"
    return (value, str(g["n_items"]), _pct(g["acc_strict"]), interval, _pct(g["acc_lenient"]))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"
