"""CPU-bound work on numbers, in pure Python (no vendored dependency).

An item is ``{"below": N}`` (count the primes below N with a sieve), ``{"factor": N}`` (factorise
N by trial division), or a bare integer N (the same as ``{"below": N}``). Results:
``{"below": N, "count": C, "largest": P}`` or ``{"factor": N, "factors": [...]}``.
"""

from __future__ import annotations

from typing import Any

BELOW_MAX = 50_000_000
FACTOR_MAX = 10**18


def handle(item: Any) -> dict[str, Any]:
    if isinstance(item, int) and not isinstance(item, bool):
        item = {"below": item}
    if not isinstance(item, dict):
        raise TypeError("an item is an integer, {'below': N} or {'factor': N}")
    if "below" in item:
        return count_below(_int(item["below"], 0, BELOW_MAX))
    if "factor" in item:
        n = _int(item["factor"], 1, FACTOR_MAX)
        return {"factor": n, "factors": factorise(n)}
    raise ValueError("an item names 'below' or 'factor'")


def _int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"expected an integer from {low} to {high}, got {value!r}")
    return value


def count_below(n: int) -> dict[str, Any]:
    if n < 3:
        return {"below": n, "count": 0, "largest": None}
    sieve = bytearray([1]) * n
    sieve[0] = sieve[1] = 0
    for p in range(2, int(n**0.5) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, n, p)))
    largest = n - 1 - sieve[::-1].index(1)
    return {"below": n, "count": sum(sieve), "largest": largest}


def factorise(n: int) -> list[int]:
    factors = []
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1 if d == 2 else 2
    if n > 1:
        factors.append(n)
    return factors
