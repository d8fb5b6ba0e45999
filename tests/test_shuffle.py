"""The epochs' shuffles: every index once, every order equally likely, ties between random keys undone."""

import itertools
import math

import jax
import numpy as np
import pytest
from scipy import stats

from purejaxppo.core import shuffle
from purejaxppo.core.shuffle import MAX_SIZE, permutation, rounds


@pytest.mark.parametrize("n", [1, 2, 3, 7, 512, 1000, 8192])
def test_permutation_holds_every_index_once(n):
    order = np.asarray(jax.jit(permutation, static_argnums=1)(jax.random.key(n), n))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_every_order_of_four_is_equally_likely():
    draws = 24_000
    orders = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, 4)))(jax.random.split(jax.random.key(0), draws)))
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(o)] for o in orders.tolist()], minlength=24)
    assert stats.chisquare(counts).pvalue > 1e-3  # fails for a bias of a few percent on any order


def test_where_each_index_lands_is_uniform():
    n, draws = 512, 4096
    orders = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, n)))(jax.random.split(jax.random.key(1), draws)))
    # which of 8 minibatches of 64 each of the first 16 indices falls in: uniform, and independent of the index
    minibatch = np.argsort(orders, axis=1)[:, :16] // 64
    counts = np.stack([np.bincount(minibatch[:, i], minlength=8) for i in range(16)])
    assert stats.chi2_contingency(counts).pvalue > 1e-3
    assert stats.chisquare(counts.sum(0)).pvalue > 1e-3


def test_later_rounds_undo_the_ties_of_the_first():
    # 2^20 indices leave 12 random bits per word: in one round ~256 indices share each key and would keep their
    # index order, so the result would hold long increasing runs. A uniform order's runs average just under 2.
    n = 2**20
    assert rounds(n) == 5
    order = np.asarray(jax.jit(permutation, static_argnums=1)(jax.random.key(2), n))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    run_starts = 1 + np.count_nonzero(np.diff(order) < 0)
    assert 1.9 < n / run_starts < 2.1


@pytest.mark.parametrize("n", [1, 2, 4, 5, 512, 2048, 8192, 65_536, 2**20, MAX_SIZE])
def test_rounds_are_the_fewest_that_make_a_tie_as_unlikely_as_jax_permutation_does(n):
    key_bits = 32 - max(1, (n - 1).bit_length())
    r = rounds(n)
    assert 3 * math.log2(max(n, 2)) <= r * key_bits  # n^3 <= 2^(key bits of all rounds)
    assert r == 1 or 3 * math.log2(n) > (r - 1) * key_bits


def test_an_empty_permutation_is_refused():
    with pytest.raises(ValueError, match="n >= 1"):
        permutation(jax.random.key(0), 0)


def test_a_batch_above_the_packed_words_limit_is_shuffled_too(monkeypatch):
    """Above MAX_SIZE (a GPU-sized batch: 262,144 envs x 128 steps is twice it) it is jax.random.permutation's
    draw: a permutation all the same, not an error. (Shown with the limit lowered: the sizes are a GPU's.)"""
    monkeypatch.setattr(shuffle, "MAX_SIZE", 4096)
    n = 4096 + 3
    order = np.asarray(jax.jit(lambda k: permutation(k, n))(jax.random.key(1)))
    np.testing.assert_array_equal(order, jax.random.permutation(jax.random.key(1), n))
    assert order.dtype == np.int32 and order.shape == (n,)
    assert np.array_equal(np.bincount(order, minlength=n), np.ones(n))  # every index exactly once
    assert (order[:1000] != np.arange(1000)).mean() > 0.99
