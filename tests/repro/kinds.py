"""One hand-minimised program per kind of wrong result or crash (copied from
shared/repro/kinds.py); tests/test_repro.py checks each against the loop."""

import numpy as np


# ---- A: a helper's in-place write into an unbatched buffer of the caller is lost
def _bump(buf, v):
    buf[0] += v


def a_helper_write_lost(x):
    buf = np.zeros(3)
    _bump(buf, x)          # per example: buf[0] == x
    return buf


# ---- B: buf[<index that reads buf>] = <batched value>: the index is evaluated after buf grows a batch axis
def b_index_reads_target(x):
    buf = np.zeros(4)
    buf[1] = 2.0
    buf[buf[1].astype(int)] = x     # per example: buf[2] = x
    return buf


def b_index_reads_target_crash(x):
    buf = np.zeros(4)
    buf[1] = 1.0
    buf[int(buf[1]) + 1] += x       # per example: buf[2] += x
    return buf


# ---- C: a name bound in every branch of a batched if/else, one branch holding a loop
def c_bound_in_both_branches(x):
    if x[0] > 0:
        for i in range(2):
            pass
        w = x
    else:
        w = -x
    return w


# ---- D: batched early return inside a loop inside an unbatched `if` that is not taken
def d_return_in_untaken_if(x, flag):
    if flag:                       # unmapped config flag, False here
        for i in range(3):
            if x[0] > 0:
                return x
    return x * 2


# ---- E: `while True:` + batched break, with a vector updated in the loop
def e_while_true_vector(x):
    while True:
        x = x * 0.5
        if x[0] < 1.0:
            break
    return x


# ---- G: masked `for` loop whose range() reads a variable the body makes batched
def g_range_bound_after_promotion(x):
    v = np.zeros(3)
    total = 0.0
    for i in range(len(v)):        # 3 iterations per example
        if x[i] > 0:
            continue
        v = v + x[i]               # v becomes batched inside the loop
        total += 1.0
    return total


# ---- H: a dict entry rebound under a batched condition keeps an "unbatched" abstract value
def h_dict_entry_masked(x, y):     # x unmapped, y mapped
    d = {'q': x * 1.0}
    if y > 0:
        d['q'] = d['q'] * 2.0
    return np.sum(d['q'][1:])


# ---- I: a name that aliases a buffer in some lanes only (`v = buf if c else x`) misses later writes to buf
def i_conditional_alias(x, c):
    buf = x * 1.0
    v = buf if c > 0 else x        # per example: v IS buf where c > 0
    buf[0] = 100.0                 # ... so v[0] == 100 there
    return v


# ---- J: a helper that writes into its argument, called for its value under a batched condition
def _set_first(buf):
    buf[0] = 7.0
    return 1.0


def j_helper_write_in_branch(x, c):
    buf = x * 1.0
    if c > 0:
        t = _set_first(buf)        # the statement form `_set_first(buf)` is refused
    return buf


CASES = [
    (a_helper_write_lost, (np.array([1.0, 2.0, 3.0]),), 0),
    (b_index_reads_target, (np.array([1.0, 2.0, 3.0, 4.0]),), 0),
    (b_index_reads_target_crash, (np.array([1.0, 2.0, 3.0]),), 0),
    (c_bound_in_both_branches, (np.array([[1.0, 2.0], [-1.0, 0.5]]),), 0),
    (d_return_in_untaken_if, (np.array([[1.0, 2.0], [-1.0, 0.5]]), False), (0, None)),
    (e_while_true_vector, (np.array([[4.0, 1.0], [9.0, 2.0]]),), 0),
    (g_range_bound_after_promotion, (np.array([[1.0, -2.0, -0.5, 0.0], [-1.0, 0.5, -3.0, 0.0]]),), 0),
    (h_dict_entry_masked, (np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, -2.0])), (None, 0)),
    (i_conditional_alias, (np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([1.0, -1.0, 2.0])), 0),
    (j_helper_write_in_branch, (np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([1.0, -1.0, 2.0])), 0),
]
