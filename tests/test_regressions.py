"""Bugs found by writing example programs and by the property tests, kept fixed."""

import numpy as np
import pytest

from astvmap import vmap

from .oracle import check
from .programs import regressions as r

rng = np.random.default_rng(0)


@pytest.mark.parametrize("batch", [1, 3])
def test_slices_keep_their_axis(batch):
    check(r.slice_keeps_rank, rng.standard_normal((batch, 4, 3)))
    check(r.sort_slice_mean, rng.standard_normal((batch, 6)))
    check(r.rbf_gram, rng.standard_normal((batch, 3, 2)))
    check(r.det_of_slice, rng.standard_normal((batch, 4, 3)))


def test_first_batched_write_inside_a_loop():
    check(r.fill_in_loop, rng.standard_normal((3, 4)))


def test_hstack_of_unbatched_pieces_has_a_rank():
    check(
        r.hstack_unbatched_then_matmul,
        rng.standard_normal((2, 3)),
        rng.standard_normal((5, 6)),
        in_axes=(None, 0),
    )


def test_emitted_module_imports_the_modules_it_names():
    X = rng.standard_normal((3, 2))
    check(r.math_module, X)
    text = vmap(r.math_module).emit(X)
    namespace: dict = {}
    exec(compile(text, "<emitted>", "exec"), namespace)
    np.testing.assert_allclose(namespace["math_module"](X), X * np.pi + np.log(2 * np.pi))


def test_augmented_assignment_to_a_batched_scalar_rebinds():
    check(r.accumulate_into_scalar, rng.standard_normal((3, 4)), rng.standard_normal((3, 2)))
