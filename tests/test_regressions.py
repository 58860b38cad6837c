"""Bugs found by writing example programs and by the property tests, kept fixed."""

import functools

import numpy as np
import pytest

from astvmap import vmap

from .harness import assert_runs_per_example
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


def test_gather_keeps_the_rows_trailing_axes():
    # table[token] of a (vocab, d) table is a d-vector per example, not a matrix.
    table, bias = rng.standard_normal((5, 3)), rng.standard_normal((2, 3))
    check(r.gather_plus_bias, table, np.array([1, 4]), bias, in_axes=(None, 0, 0))


def test_nested_vmap_of_partials_with_different_bound_values():
    x = np.ones((2, 3, 4))
    two = vmap(vmap(functools.partial(r.scale, 2.0)))(x)
    three = vmap(vmap(functools.partial(r.scale, 3.0)))(x)
    assert two[0, 0, 0] == 2.0 and three[0, 0, 0] == 3.0


def test_assert_statement_is_translated():
    # ruff's UP005 once renamed Translator.assert_ to assertTrue: asserts crashed.
    check(r.assert_positive, rng.standard_normal((3, 4)))


def test_inplace_update_of_an_unbatched_array_keeps_its_dtype():
    x, y = np.ones(3, np.float32), rng.standard_normal((2, 3))
    check(r.inplace_into_unbatched_buffer, x, y, in_axes=(None, 0))


def test_inplace_update_whose_value_reads_the_array():
    # Found by the differential tester: the value must be computed before b grows
    # its batch axis.
    check(r.inplace_update_reading_itself, rng.standard_normal((3, 2, 4)))


def test_masked_boolean_return_stays_boolean():
    # `result` starts as False (not 0, which made the booleans int).
    check(r.masked_bool_return, rng.standard_normal((4, 3)), True, in_axes=(0, None))


def test_a_view_of_a_buffer_that_grows_a_batch_axis_runs_per_example():
    # Found by the differential tester: b is materialised as a copy with a batch
    # axis, so v (a view of the old b) would miss the write. Per example, not wrong.
    args = (rng.standard_normal((3, 2)),)
    assert_runs_per_example(r.view_then_batched_write, args, where="may share memory")


# Found by the 10,000-program differential run of 2026-11-24.
def test_a_view_made_by_a_call_is_a_view_too():
    args = (rng.standard_normal(3),)
    assert_runs_per_example(r.view_by_swapaxes_then_batched_write, args, where="may share memory")


def test_leaving_a_loop_body_early_still_widens_names_the_loop_made_batched():
    check(r.rebound_unbatched_then_break, rng.standard_normal(3))
    check(r.rebound_unbatched_then_continue, rng.standard_normal((3, 2, 2)))


def test_a_rule_giving_a_python_float_where_numpy_gives_a_scalar():
    check(r.python_float_from_min_widened, rng.standard_normal(3), 3, in_axes=(0, None))


def test_invert_of_a_python_bool_given_a_batch_axis_runs_per_example():
    # ~False is -1 for the loop's Python bool, True for a NumPy bool.
    args = (rng.standard_normal((5, 2)), False)
    f = r.invert_a_widened_python_bool
    assert_runs_per_example(f, args, (1, None), where="may hold a Python bool")


def test_a_plain_continue_in_a_loop_with_a_batched_break_skips_one_iteration():
    # Was silently wrong: the continue retired its lanes from the whole loop.
    v = rng.standard_normal((50, 4))
    check(r.plain_continue_in_a_loop_with_batched_break, v, 0.5, in_axes=(0, None))


def test_augmented_float_into_an_int_element_whose_dtype_is_not_known():
    # 10,000-program run at ce3c689: `+=` on the batched rows raised UFuncTypeError
    # where the loop's `b[0] += v` assigns b[0] + v, cast to int.
    k = np.array([-2, -1])
    check(
        r.augmented_float_into_int_element_of_unknown_dtype,
        np.array([-1.75, 0.75, 2.0]),
        k,
        in_axes=(0, None),
    )


@pytest.mark.parametrize(
    "f",
    [r.maybe_bound_then_assigned_in_a_batched_loop, r.maybe_bound_then_assigned_in_a_batched_if],
)
def test_a_name_bound_on_some_paths_only_is_not_assigned_under_a_mask(f):
    # Was silently wrong: the masked assignment rebound `y` in every lane, so lanes
    # that left the loop early lost their value. Refused now, with the rewrite.
    # (A flag given as a bool is known while transforming, so `if flag:` is decided then:
    # an int flag keeps the branch a run-time one.)
    args = (np.array([1, 3, 5]), 1)
    assert_runs_per_example(f, args, (0, None), where="bound on some paths only")
    check(f, np.array([1, 3, 5]), True, in_axes=(0, None))


def test_a_masked_in_place_update_is_seen_through_other_names():
    # 10,000-program run at 28ca5de (2 programs, silently wrong): `x -= ...` under a
    # batched if rebound x, so the `for row in x` iterator missed the update.
    x = np.array([[[1.5, 0.5, 0.0]], [[-1.0, -0.75, -2.0]], [[-1.75, -2.0, -1.5]]])
    check(r.masked_in_place_update_seen_by_the_loop_over_it, x, np.array([1]), in_axes=(-2, -1))
    check(
        r.masked_in_place_update_seen_by_the_loop_over_it,
        rng.standard_normal((4, 3, 2)),
        0.0,
        in_axes=(0, None),
    )


def test_a_masked_in_place_update_refuses_an_unsafe_cast_as_the_loop_does():
    n = np.array([[1, 2], [-3, -4]])
    with pytest.raises(TypeError):
        r.masked_in_place_float_into_int(n[0].copy())
    with pytest.raises(TypeError):
        vmap(r.masked_in_place_float_into_int)(n.copy())
    check(r.masked_in_place_float_into_int, -np.abs(n))  # no example takes the branch


def test_a_batched_write_through_a_view_of_another_array_runs_per_example():
    # Found in review (silently wrong): b was materialised as a copy with a batch
    # axis, so the write never reached a.
    args = (rng.standard_normal(3),)
    assert_runs_per_example(r.write_through_a_view_into_its_base, args, where="may share memory")


def test_a_global_objects_method_keeps_its_specialisation():
    # Found while adding rng.normal (raised "internal: the specialisation ... does not
    # hold"): the method was guarded by the identity of the bound method, which each
    # attribute read makes anew; it is now guarded by its class and function.
    X = rng.standard_normal((4, 3))
    f = vmap(r.calls_a_global_objects_method)
    check(r.calls_a_global_objects_method, X)
    np.testing.assert_allclose(f(X), X * 2.0 + 1.0)
    np.testing.assert_allclose(f(X), X * 2.0 + 1.0)


def test_a_helper_reached_through_a_module_imported_in_the_body():
    check(r.helper_through_a_local_import, rng.standard_normal((3, 4)))


def test_iterating_a_vector_that_the_body_writes_into():
    check(r.iterate_a_vector_written_in_place, np.array([[1.0, 2.0], [-1.0, 0.5], [2.0, 3.0]]))


def test_an_alias_chosen_by_an_unbatched_condition_then_written():
    args = (np.array([1.0, 2.0, 3.0]),)
    assert_runs_per_example(r.alias_chosen_by_an_unbatched_condition, args, where="`b` is written")
