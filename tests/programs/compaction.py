"""Per-example loops for the lane-compaction tests (tests/test_compaction.py).

Each is written so that most lanes leave early and a few run long: a batch of
a few thousand crosses the compaction threshold several times.
"""

import numpy as np


def widen_after_compaction(x):
    # `a` is an int until the second iteration copies the float `b` into it: rows
    # put back at a compaction after the first iteration must not be cast to int.
    a = 0
    b = 0
    i = 0
    while i < x:
        a = b
        b = b + 0.5
        i += 1
    return a


def bound_in_a_branch_across_iterations(x):
    # `y` is bound only in some lanes: its bound-lanes mask is state the loop
    # writes, which a compaction must carry along and put back.
    if x > 6:
        y = -1
    k = 0
    while k < x:
        if k == 2:
            y = k * 10
        k += 1
    return y


def read_only_rows(v, n):
    # A batched vector only read by the loop: gathered, then restored whole.
    s = 0.0
    i = 0
    while i < n:
        s = s + v[i % 3] * i
        i += 1
    return s + v.sum()


def continue_then_stop(n):
    total = 0
    i = 0
    while i < n:
        i += 1
        if i % 3 == 0:
            continue
        total += i
    return total


def while_in_plain_for(n):
    # The inner loop starts again, uncompacted, in each outer iteration.
    out = 0
    for j in range(3):
        m = n + j
        while m > 1:
            m = m // 2
            out += 1
    return out


def while_in_while(n):
    # Only the outer loop compacts: the inner one runs under the outer's mask.
    steps = 0
    while n > 1:
        m = n
        while m > n // 2:
            m -= 1
            steps += 1
        n = m
    return steps


def vector_state(v, n):
    # Loop state with per-example axes.
    acc = np.zeros(3)
    i = 0
    while i < n:
        acc = acc * 0.5 + v
        i += 1
    return acc


def setitem_in_loop(n):
    # An item write in the loop: the buffer would be written through a gathered
    # copy, so this loop is not compacted.
    buf = np.zeros(2)
    i = 0
    while i < n:
        buf[i % 2] = buf[i % 2] + i
        i += 1
    return buf


def helper(x):
    return x + 1


def calls_a_helper(n):
    # A call to the user's own function: not compacted (it could keep its argument).
    i = 0
    while i < n:
        i = helper(i)
    return i


def reads_a_name_bound_on_some_paths(x, flag):
    # `y` exists only if flag: gathering it at a compaction would fail without it,
    # so this loop is not compacted.
    if flag:
        y = x * 2
    i = 0
    s = 0
    while i < x:
        if flag:
            s = s + y
        i += 1
    return s
