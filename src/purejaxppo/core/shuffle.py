"""The epochs' shuffles: uniformly random permutations, drawn as `jax.random.permutation` draws them but faster.

`jax.random.permutation` sorts the indices by random 32-bit keys, in as many rounds as make a tie (which would
keep two indices in their old order) unlikely: `ceil(3 log n / log 2^32)`, so that n^3 <= 2^(32 rounds). Each of
its rounds is a sort of (key, index) pairs, which XLA's CPU runtime runs through a generic comparator, a large
share of a training run's time (measured in benchmarks/README.md). `permutation` packs each pair into one 32-bit
word instead, the random key in the high bits and the index in the low `b = bit_length(n - 1)` bits, and sorts
the words: a single-operand sort, which XLA runs several times faster. The keys are then `32 - b` bits wide, so
it takes `ceil(3 log2 n / (32 - b))` rounds, the same bound on ties.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

MAX_SIZE = 2**24
"""The largest n `permutation` sorts packed words for: above it fewer than 8 bits of each word are left for the
random key, and it draws with `jax.random.permutation` instead (a batch that large is a GPU's)."""


def _index_bits(n: int) -> int:
    """The low bits of each word that hold an index below n."""
    return max(1, (n - 1).bit_length())


def rounds(n: int) -> int:
    """The sorts `permutation(key, n)` makes: enough that n^3 <= 2^(key bits of every round together)."""
    return max(1, math.ceil(3 * math.log2(max(n, 2)) / (32 - _index_bits(n))))


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of `range(n)`, `[n]` int32, `n >= 1`.

    Each round sorts the words `random_bits & ~mask | position`: every word is distinct, so the sort needs no
    stable tie-break, and indices whose random bits tie keep the order of the round before. A round applied to a
    uniformly random order leaves it uniformly random; the first round's order is uniform but for ties among its
    keys, and the later rounds shrink their chance as `jax.random.permutation`'s rounds do.
    """
    if n < 1:
        raise ValueError(f"permutation needs n >= 1, got {n}")
    if n > MAX_SIZE:
        return jax.random.permutation(key, n).astype(jnp.int32)
    mask = jnp.uint32((1 << _index_bits(n)) - 1)
    position = jnp.arange(n, dtype=jnp.uint32)
    order = position
    for round_key in jax.random.split(key, rounds(n)):
        words = jax.random.bits(round_key, (n,), jnp.uint32) & ~mask | position
        order = order[jax.lax.sort(words) & mask]
    return order.astype(jnp.int32)
