"""Benchmark metrics from per-sample correctness: avg@k and the unbiased pass@k estimator.

pass@k (Chen et al., 2021): with n samples of which c are correct, the probability that at
least one of k samples drawn without replacement is correct, 1 - C(n-c, k) / C(n, k), averaged
over items. It is computed as a product, never with huge binomials. avg@k is the mean
correctness over all samples (the paper's "pass@8" for AIME/AMC is avg@8).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["avg_at_k", "pass_at_k", "pass_at_k_table", "report_ks"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with n samples, c correct (k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def avg_at_k(correct: Sequence[Sequence[bool]]) -> float:
    """Mean correctness over every sample of every item."""
    total = sum(len(item) for item in correct)
    return sum(sum(item) for item in correct) / total if total else 0.0


def report_ks(n: int) -> list[int]:
    """The k reported for n samples: 1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n]


def pass_at_k_table(correct: Sequence[Sequence[bool]]) -> dict[str, float]:
    """{"1": ..., "2": ..., "n": ...} averaged over items (each item has the same n samples)."""
    if not correct:
        return {}
    n = min(len(item) for item in correct)
    return {str(k): sum(pass_at_k(len(item), sum(item), k) for item in correct) / len(correct)
            for k in report_ks(n)}
