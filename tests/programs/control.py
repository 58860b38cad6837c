"""Per-example programs with Python control flow on per-example values.

Used by tests/test_control_flow.py: each is run by vmap on a batch whose lanes
take different branches and stop their loops at different iterations, and
compared with the loop over examples.
"""

import numpy as np


# ------------------------------------------------------------------- if / else
def relu_if(x):
    if x > 0:
        y = x
    else:
        y = 0.0 * x
    return y


def if_without_else(x):
    y = x
    if x > 0:
        y = 2.0 * x + 1.0
    return y


def elif_chain(x):
    if x < -1.0:
        y = -1.0
    elif x < 0.0:
        y = x * x
    elif x < 1.0:
        y = np.sqrt(x)
    else:
        y = x + 10.0
    return y


def nested_if(x, y):
    if x > 0:
        if y > 0:
            z = x + y
        else:
            z = x - y
    else:
        if y > 0:
            z = -x * y
        else:
            z = 100.0
    return z


def branch_on_unbatched_flag(x, flag):
    # ``flag`` is unbatched (in_axes None): a plain Python if around a batched one.
    if flag > 0:
        if x > 0:
            x = x * 3.0
    else:
        x = x - 1.0
    return x


def recip_if(x):
    y = 0.0
    if x != 0:
        y = 1.0 / x
    return y


def log_or_zero(x):
    # The loop never takes log of a non-positive x: no warning, and no NaN leaks out.
    if x > 0:
        y = np.log(x)
    else:
        y = 0.0
    return y


# ---------------------------------------------------------------- expressions
def ternary(x):
    return x if x > 0 else -2.0 * x


def ternary_vectors(x):
    # A per-example vector chosen by a per-example scalar.
    return x * 2.0 if x.sum() > 0 else x[::-1] - 1.0


def bool_ops(a, b):
    both = a > 0 and b > 0
    either = a > 0 or b > 0
    neither = not (a > 0 or b > 0)
    return both, either, neither


def bool_values(a, b):
    # ``and``/``or`` on numbers return one of their operands (Python's value semantics).
    return (a and b), (a or b), (not a)


def chained_compare(x):
    if -1.0 < x <= 1.0:
        return x * 3.0
    return x


def min_max_abs(x, y):
    return min(x, y), max(x, y), abs(x - y), min(abs(x), 1.0)


# ---------------------------------------------------------- several returns
def sign_returns(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return 0


def huber(r, d):
    if abs(r) < d:
        return 0.5 * r * r
    return d * (abs(r) - 0.5 * d)


def returns_vectors(x):
    # Different expressions (rank 1) returned per branch.
    s = x.sum()
    if s > 1.0:
        return x / s
    elif s < -1.0:
        return -x
    return np.zeros_like(x)


# ---------------------------------------------------------------------- while
def collatz(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def newton_sqrt(a):
    y = a
    while abs(y * y - a) > 1e-9 * a:
        y = 0.5 * (y + a / y)
    return y


def mandelbrot(cr, ci):
    zr = 0.0
    zi = 0.0
    count = 0
    for _ in range(100):
        if zr * zr + zi * zi > 4.0:
            break
        zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
        count += 1
    return count


def bisection(c):
    # The root of x**3 - c on [0, max(1, c)], to 1e-10.
    lo = 0.0
    hi = max(1.0, c)
    while hi - lo > 1e-10:
        mid = 0.5 * (lo + hi)
        if mid**3 > c:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def grow_until(x):
    # ``t < 3`` is unbatched on entry; ``t`` becomes batched after one iteration.
    t = 0.0
    k = 0
    while t < 3.0:
        t = t + x
        k = k + 1
    return t, k


def square_until_large(x):
    # Lanes that stopped early would overflow if they kept squaring.
    k = 0
    while x < 1e10:
        x = x * x + 2.0
        k += 1
    return x, k


def halve_vector(v):
    # A per-example vector updated under a batched while condition.
    n = 0
    while np.abs(v).max() > 1.0:
        v = v / 2.0
        n += 1
    return v, n


def while_true_break(x):
    i = 0
    while True:
        x = x * 1.5
        i += 1
        if x > 10.0:
            break
    return x, i


# -------------------------------------------------------- for, break, continue
def count_up_to(n):
    # ``range`` of a per-example bound.
    total = 0
    for i in range(n):
        total += i * i
    return total


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def first_above(v, t):
    idx = -1
    for i in range(v.shape[0]):
        if v[i] > t:
            idx = i
            break
    return idx


def sum_skipping(v):
    total = 0.0
    for x in v:
        if x < 0:
            continue
        total += x
    return total


def skip_and_stop(v):
    # continue and break in one loop, under different batched conditions.
    total = 0.0
    count = 0
    for i in range(v.shape[0]):
        if v[i] < 0:
            continue
        if v[i] > 2.0:
            break
        total += v[i]
        count += 1
    return total, count


def nested_break(M, t):
    # Per row, the first column above t; the inner break leaves only the inner loop.
    out = np.zeros(M.shape[0], dtype=np.int64)
    for i in range(M.shape[0]):
        j = 0
        for k in range(M.shape[1]):
            if M[i, k] > t:
                break
            j += 1
        out[i] = j
    return out


def nested_while_in_for(v):
    # Each element of v halved until below 1; the total number of halvings.
    steps = 0
    for x in v:
        y = abs(x)
        while y > 1.0:
            y = y / 2.0
            steps += 1
    return steps


def rows_until_negative(X):
    # ``for row in X`` over a per-example matrix, with a batched break.
    total = 0.0
    for row in X:
        if row.sum() < 0:
            break
        total += row.max()
    return total


def continue_in_range(n):
    s = 0
    for i in range(n):
        if i % 3 == 0:
            continue
        s += i
    return s


# ------------------------------------------------------------ return in loops
def index_of_first_above(v, t):
    for i in range(v.shape[0]):
        if v[i] > t:
            return i
    return -1


def search_returns(v):
    # Three returns: two inside the loop, one after it.
    for i in range(v.shape[0]):
        if v[i] > 1.0:
            return v[i] * 10.0
        if v[i] < -1.0:
            return v[i] - 10.0
    return 0.0


def return_in_while(x):
    k = 0
    while x > 1.0:
        if x > 50.0:
            return -1
        x = x / 2.0
        k += 1
    return k


# ------------------------------------------------------------ masked writes
def masked_setitem(x):
    buf = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        if x[i] > 0:
            buf[i] = x[i] * 2.0
    return buf


def masked_add_setitem(x):
    buf = np.ones(x.shape[0])
    for i in range(x.shape[0]):
        if x[i] > 0:
            buf[i] += x[i]
        else:
            buf[i] -= 1.0
    return buf


def write_by_scalar_condition(v, s):
    # A rank-1 buffer written (slice and element) under a rank-0 condition.
    buf = np.zeros(3)
    if s > 0:
        buf[:] = v[:3]
        buf[0] += s
    return buf


def histogram_if(v):
    counts = np.zeros(3, dtype=np.int64)
    for x in v:
        if x < -0.5:
            counts[0] += 1
        elif x < 0.5:
            counts[1] += 1
        else:
            counts[2] += 1
    return counts


# ---------------------------------------------------- augmented and tuple assign
def augmented_under_mask(x, y):
    s = y
    p = 1.0
    if x > 0:
        s += x
        p *= x
        s -= 0.5
    else:
        p /= 2.0
        s *= 3.0
    return s, p


def swap_under_mask(a, b):
    if a > b:
        a, b = b, a + b
    return a, b


def int_augmented(n):
    k = n
    if n % 3 == 0:
        k //= 3
    elif n % 3 == 1:
        k *= 2
    else:
        k -= 1
    return k


# -------------------------------------------------- per-example vectors in branches
def vector_branches(x):
    s = x.sum()
    if s > 0:
        y = x / (1.0 + s)
        z = np.cumsum(x)
    else:
        y = -x
        z = x * s
    return y + z


def matrix_branch(A, s):
    # A rank-2 value chosen by a rank-0 condition, with an unbatched scalar mixed in.
    if s > 0:
        B = A @ A.T
    else:
        B = np.outer(A[:, 0], A[:, -1]) * s
    return B


# ---------------------------------------------------- partial bindings, raise
def bound_in_one_branch(x):
    if x > 0:
        y = x * 2.0
    return y


def bound_in_one_branch_guarded(x):
    # Read only in the lanes that bound it: never unbound.
    if x > 0:
        y = x * 2.0
    if x > 0:
        return y
    return x


def raise_if_negative(x):
    if x < 0:
        raise ValueError("negative input")
    return np.sqrt(x)


def raise_in_loop(v):
    total = 0.0
    for x in v:
        if x > 3.0:
            raise ValueError("too large")
        total += x
    return total


def truth_of_vector(x):
    if x > 0:
        return x
    return -x


def truth_of_vector_in_while(x):
    while x > 1.0:
        x = x / 2.0
    return x


def loop_else(x):
    while x > 1.0:
        x = x / 2.0
        if x < 0.3:
            break
    else:
        x = x + 100.0
    return x


def range_start_step(n):
    s = 0
    for i in range(1, n, 2):
        s += i
    return s


# --------------------------------------- programs that astvmap gets wrong (xfail)
def halve_with_temp(x):
    # A name first bound inside a batched while body.
    while x > 1.0:
        m = x / 2.0
        x = m
    return x


def continue_in_while(n):
    k = 0
    s = 0
    while k < n:
        k += 1
        if k % 2 == 0:
            continue
        s += k
    return s


def return_in_nested_loops(M):
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if M[i, j] > 0:
                return i
    return -1


def inner_loop_in_batched_range(v, n):
    s = 0.0
    for _ in range(n):
        for j in range(v.shape[0]):
            s += v[j]
    return s


def inner_break_in_batched_while(M, t):
    # A batched outer while; the inner for breaks at a batched condition.
    i = 0
    count = 0
    while i < M.shape[0] and count < 2:
        for j in range(M.shape[1]):
            if M[i, j] > t:
                count += 1
                break
        i += 1
    return count


def scan_while(v, t):
    # ``and`` short-circuits: v[i] is never read with i == len(v).
    i = 0
    while i < v.shape[0] and v[i] < t:
        i += 1
    return i


def gather_if_in_range(v, i):
    return v[i] if i < v.shape[0] else -1.0


def first_index_or_past_end(v, t):
    i = 0
    while not (i >= v.shape[0] or v[i] > t):
        i += 1
    return i


def guarded_gather(v, i):
    y = 0.0
    if i < v.shape[0]:
        y = v[i]
    return y


def guarded_setitem(i):
    buf = np.zeros(4)
    if i < 4:
        buf[i] = 1.0
    return buf


def recip_ternary(x):
    return 1.0 / x if x != 0 else 0.0


def recip_and(x):
    return x != 0 and 1.0 / x > 2.0


def tuple_returns(x):
    if x > 0:
        return x, 1
    return -x, 0


def tuple_returns_three_ways(x):
    if x > 1:
        return x, np.ones(2) * x
    elif x < -1:
        return -x, np.zeros(2)
    return 0.0 * x, np.full(2, 3.0)


def loop_var_bound_before(n):
    i = -1
    for i in range(n):  # noqa: B007 - the last value of i is the result
        pass
    return i
