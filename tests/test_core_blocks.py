"""Stacks of small blocks: the unrolled routines equal numpy's batched LAPACK."""

import numpy as np
import pytest

from sklearn_mixed.core.blocks import (
    batched_cholesky,
    batched_lower_inverse,
    block_matmul,
    blockwise_outer,
    rows_times_blocks,
)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_cholesky_and_inverse_match_numpy(k):
    rng = np.random.default_rng(k)
    G = rng.normal(size=(50, k, k))
    D = G @ np.swapaxes(G, 1, 2) + 0.1 * np.eye(k)
    L = batched_cholesky(D)
    np.testing.assert_allclose(L, np.linalg.cholesky(D), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(batched_lower_inverse(L), np.linalg.inv(L), rtol=1e-9, atol=1e-10)


def test_cholesky_rejects_indefinite_block():
    D = np.tile(np.eye(2), (3, 1, 1))
    D[1] = [[1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(np.linalg.LinAlgError):
        batched_cholesky(D)


@pytest.mark.parametrize("transpose", [False, True])
def test_rows_times_blocks_and_blockwise_outer(transpose):
    rng = np.random.default_rng(0)
    B, M, A = rng.normal(size=(4, 30, 3)), rng.normal(size=(30, 3, 3)), rng.normal(size=(4, 30, 2))
    expected = np.einsum("rmk,mlk->rml" if transpose else "rmk,mkl->rml", B, M)
    np.testing.assert_allclose(rows_times_blocks(B, M, transpose=transpose), expected)
    np.testing.assert_allclose(blockwise_outer(A, B), np.einsum("rja,rjb->jab", A, B))


def test_block_matmul_matches_numpy():
    rng = np.random.default_rng(1)
    A, B, T = rng.normal(size=(20, 3, 3)), rng.normal(size=(20, 3, 3)), rng.normal(size=(3, 3))
    np.testing.assert_allclose(block_matmul(A, B), A @ B)
    np.testing.assert_allclose(block_matmul(T.T, block_matmul(A, T)), T.T @ A @ T)
