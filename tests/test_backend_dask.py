"""dask arrays as mapped arguments, on a real dask.distributed cluster (two worker
processes on 127.0.0.1, no dashboard), checked against the loop oracle.

One cluster for the module; the graph-shape tests run without it.
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
import warnings
from typing import NamedTuple

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from astvmap import PerformanceWarning, vmap  # noqa: E402
from astvmap.testing import assert_same, loop  # noqa: E402

RNG = np.random.default_rng(7)


class Out(NamedTuple):
    y: np.ndarray
    norm: np.ndarray


def layer(x, W, b):
    h = np.tanh(x @ W + b)
    return Out(h, np.sqrt((h * h).sum()))


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-10 * a:
        x = 0.5 * (x + a / x)
    return x


def conv(x, k):
    return np.histogram(x, bins=3, range=(-3.0, 3.0))[0] * k  # no rule: per example


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # The workers get their own (never created) cache directory: they must not need one.
    worker_cache = tmp_path_factory.mktemp("workers") / "astvmap-cache"
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit="1GiB",
        env={"ASTVMAP_CACHE_DIR": str(worker_cache)},
    )
    with cluster, distributed.Client(cluster) as c:
        c.worker_cache = worker_cache
        yield c


def test_pytree_output_on_the_cluster_equals_the_loop(client):
    X = RNG.standard_normal((64, 6))
    W, b = RNG.standard_normal((6, 4)), RNG.standard_normal(4)
    f = vmap(layer, in_axes=(0, None, None))
    out = f(da.from_array(X, chunks=(16, 3)), W, b)
    assert isinstance(out, Out) and all(isinstance(v, da.Array) for v in out)
    assert out.y.chunks == ((16, 16, 16, 16), (4,))
    got = client.compute(out, sync=True)
    assert_same(Out(*got), loop(layer, (X, W, b), (0, None, None)))


def test_other_in_and_out_axes_and_numpy_next_to_dask(client):
    X = RNG.standard_normal((6, 30))  # batch on axis 1
    W, b = RNG.standard_normal((6, 4)), RNG.standard_normal((30, 4))  # b mapped, NumPy
    f = vmap(layer, in_axes=(1, None, 0), out_axes=Out(1, 0))
    out = f(da.from_array(X, chunks=(2, 7)), W, b)
    assert out.y.shape == (4, 30) and out.y.chunks[1] == (7, 7, 7, 7, 2)
    got = client.compute(out, sync=True)
    assert_same(Out(*got), loop(layer, (X, W, b), (1, None, 0), Out(1, 0)))


def test_control_flow_and_batch_of_one_block(client):
    a = RNG.uniform(0.5, 50.0, size=37)
    for chunks in (37, 5):
        got = vmap(newton_sqrt)(da.from_array(a, chunks=chunks)).compute()
        assert_same(got, loop(newton_sqrt, (a,)))
    got = vmap(newton_sqrt)(da.from_array(a[:1], chunks=1)).compute()  # a batch of one
    assert_same(got, loop(newton_sqrt, (a[:1],)))


def test_fallback_runs_per_block_with_one_warning(client):
    X, k = RNG.standard_normal((20, 5)), np.array([1.0, -2.0, 0.5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = vmap(conv, in_axes=(0, None))(da.from_array(X, chunks=4), k)
        got = client.compute(out, sync=True)
    perf = [w for w in caught if issubclass(w.category, PerformanceWarning)]
    assert len(perf) == 1 and "np.histogram" in str(perf[0].message)
    assert out.numblocks == (5, 1)
    assert_same(got, loop(conv, (X, k), (0, None)))


def test_workers_compile_the_shipped_source_and_never_transform(client):
    X = RNG.standard_normal((12, 3))
    W, b = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    client.compute(
        vmap(layer, in_axes=(0, None, None))(da.from_array(X, chunks=4), W, b), sync=True
    )

    def state():
        import linecache

        return {
            "transformed": any(m in sys.modules for m in ("libcst", "astvmap.pipeline")),
            "generated": [f for f in linecache.cache if f.startswith("<astvmap layer")],
        }

    for s in client.run(state).values():
        assert not s["transformed"]
    assert any(s["generated"] for s in client.run(state).values())
    assert not client.worker_cache.exists()


# ------------------------------------------------------ the graph (no cluster)
def test_an_unmapped_array_enters_the_graph_once():
    from astvmap.backends.kernel import Kernel

    W = RNG.standard_normal((256, 512))
    X = RNG.standard_normal((64, 256))
    out = vmap(layer, in_axes=(0, None, None))(da.from_array(X, chunks=4), W, np.zeros(512))
    (opt,) = dask.optimize(out.y)  # as a scheduler gets it: fused, culled
    graph = dict(opt.__dask_graph__())
    # W travels in the kernel, which is one key (stored and shipped once per worker) ...
    holders = [k for k, v in graph.items() if isinstance(getattr(v, "value", None), Kernel)]
    assert len(holders) == 1
    # ... that each of the 16 tasks names as a dependency rather than carrying it inline
    # (a pickled graph would not show the difference: pickle writes a shared object once).
    tasks = [v for k, v in graph.items() if isinstance(k, tuple) and k[0] == opt.name]
    assert len(tasks) == out.y.numblocks[0] == 16
    assert all(holders[0] in t.dependencies for t in tasks)


def test_kernel_pickles_to_source_text():
    import cloudpickle

    from astvmap.backends import kernel as K

    f = vmap(layer, in_axes=(0, None, None))
    out = f(da.from_array(RNG.standard_normal((8, 3)), chunks=4), np.ones((3, 2)), np.ones(2))
    kernels = [
        v.value if hasattr(v, "value") else v
        for v in dict(out.y.__dask_graph__()).values()
        if isinstance(getattr(v, "value", v), K.Kernel)
    ]
    assert len(kernels) == 1
    copy = pickle.loads(cloudpickle.dumps(kernels[0]))
    assert "def layer(x, W, b):" in copy.source
    assert copy._functions is None  # compiled on first use, from the text


@dataclasses.dataclass
class Params:
    W: np.ndarray
    b: np.ndarray


def mlp(p, x, scale=1.0):
    return {"h": np.tanh(x @ p.W + p.b) * scale, "n": x.sum()}


def dot(a, b):
    return (a * b).sum()


def test_pytrees_keywords_nesting_and_chunkings_without_a_cluster():
    X = RNG.standard_normal((20, 4))
    p = Params(RNG.standard_normal((4, 3)), RNG.standard_normal(3))
    with dask.config.set(scheduler="sync"):
        # A dataclass argument, an unmapped dask keyword argument (computed once, at the call).
        f = vmap(mlp, in_axes=(None, 0))
        got = dask.compute(f(p, da.from_array(X, chunks=6), scale=da.from_array(2.0)))[0]
        assert_same(got, loop(mlp, (p, X), (None, 0), scale=2.0))
        # An unmapped dask array next to a mapped one.
        W, b = RNG.standard_normal((4, 2)), RNG.standard_normal(2)
        got = vmap(layer, in_axes=(0, None, None))(da.from_array(X, chunks=6), da.from_array(W), b)
        assert_same(Out(*dask.compute(*got)), loop(layer, (X, W, b), (0, None, None)))
        # A mapped dask leaf inside a dataclass.
        Ws = RNG.standard_normal((10, 4, 3))
        g = vmap(mlp, in_axes=(Params(0, None), None))
        got = dask.compute(g(Params(da.from_array(Ws, chunks=(3, 2, 3)), p.b), X[0]))[0]
        assert_same(got, loop(mlp, (Params(Ws, p.b), X[0]), (Params(0, None), None)))
        # Nested vmap: the dask array is mapped by the outer one.
        A, B = RNG.standard_normal((5, 3)), RNG.standard_normal((7, 3))
        nested = vmap(vmap(dot, in_axes=(0, None)), in_axes=(None, 0))
        assert_same(nested(A, da.from_array(B, chunks=3)).compute(), nested(A, B))
        # Two mapped dask arguments chunked differently: the first one's batch chunks win.
        out = vmap(np.add)(da.from_array(X, chunks=7), da.from_array(X, chunks=(5, 2)))
        assert out.chunks == ((7, 7, 6), (4,))
        assert_same(out.compute(), 2 * X)


def test_mapped_sizes_must_agree():
    f = vmap(layer, in_axes=(0, None, 0))
    with pytest.raises(ValueError, match="inconsistent sizes"):
        f(da.ones((5, 3), chunks=2), np.ones((3, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("feature", [("axis_name", "batch"), ("randomness", "different")])
def test_whole_batch_features_are_refused_on_dask(feature):
    # vmap() does not take these yet; a vmapped function that has them must not run per chunk.
    from astvmap import UnsupportedError

    f = vmap(newton_sqrt)
    setattr(f, *feature)
    with pytest.raises(UnsupportedError, match=feature[0]):
        f(da.ones(4, chunks=2))


def test_readme_dask_example(client, tmp_path):
    import re
    from pathlib import Path

    from cli import load_module

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start, end = readme.index("<!-- dask-example -->"), readme.index("<!-- /dask-example -->")
    setup, example = re.findall(r"```python\n(.*?)```", readme[start:end], re.S)
    assert "LocalCluster" in setup  # the fixture's cluster stands in for it
    path = tmp_path / "readme_dask_example.py"
    path.write_text(example)
    m = load_module(path)
    assert isinstance(m.Y, da.Array) and m.Y.numblocks == (10, 1)
    want = np.tanh(m.X.compute() @ m.W + m.b).sum(axis=0)
    np.testing.assert_allclose(m.total, want, rtol=1e-9)
