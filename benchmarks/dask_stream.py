"""Benchmark: stream a batch several times larger than a worker's memory through a
local dask cluster, with a vmapped function, and compare with one process.

    python benchmarks/dask_stream.py [--gb 2] [--memory-limit 300MB] [--chunk-mb 16]

The batch (rows of 64 float64 numbers, about ``--gb`` GB) is made lazily, chunk by
chunk, on the workers; each chunk goes through the vmapped per-example layer
``tanh(x @ W + b)`` (W, b unmapped: in the graph once) and the outputs are summed,
so no chunk needs to outlive its task. Reported: the peak resident memory of each
worker process (sampled every 20 ms on the worker itself), against its memory
limit and the batch size; the throughput (examples/s) on the cluster and for the
same work (same chunks, same vmapped function) streamed through one process.
Also the CPU seconds each side used: on a shared machine the wall-clock figures
depend on the other load, the CPU time shows what the cluster costs on top.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dask.array as da  # noqa: E402
import distributed  # noqa: E402

from astvmap import vmap  # noqa: E402

D_IN, D_OUT = 64, 32


def layer(x, W, b):  # one example: x (64,) -> (32,)
    return np.tanh(x @ W + b)


def make_chunk(block_id: int, rows: int) -> np.ndarray:
    """The rows of chunk ``block_id``: the same numbers on a worker and in one process."""
    return np.random.default_rng(block_id).standard_normal((rows, D_IN))


def _chunk_from_info(block_info=None):  # noqa: ANN001 - dask's map_blocks protocol
    info = block_info[None]
    (start, stop), _ = info["array-location"]
    return make_chunk(info["chunk-location"][0], stop - start)


# ------------------------------------------------------- worker memory sampler
def _start_sampler(dask_worker) -> None:  # noqa: ANN001 - client.run passes the Worker
    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "stop": False}

    def sample() -> None:
        while not state["stop"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker.astvmap_sampler = state


def _stop_sampler(dask_worker) -> int:  # noqa: ANN001
    state = dask_worker.astvmap_sampler
    state["stop"] = True
    return state["peak"]


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _cpu() -> float:
    """CPU seconds this process has used (user + system)."""
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gb", type=float, default=2.0, help="batch size in GB (float64 rows)")
    ap.add_argument("--memory-limit", default="300MB", help="memory limit per worker")
    ap.add_argument("--chunk-mb", type=float, default=16.0, help="rows per chunk, in MB")
    args = ap.parse_args()

    rows = int(args.chunk_mb * 1e6 / (8 * D_IN))
    n_chunks = max(1, int(args.gb * 1e9 / (8 * D_IN * rows)))
    n = rows * n_chunks
    rng = np.random.default_rng(0)
    W = rng.standard_normal((D_IN, D_OUT)) / 8
    b = rng.standard_normal(D_OUT)
    f = vmap(layer, in_axes=(0, None, None))
    print(
        f"batch: {n:,} examples x {D_IN} float64 = {n * D_IN * 8 / 1e9:.2f} GB "
        f"in {n_chunks} chunks of {rows:,} rows ({rows * D_IN * 8 / 1e6:.0f} MB)"
    )

    # One process: the same chunks, one after another, through the same vmapped function.
    f(make_chunk(0, 2), W, b)  # transform once, outside the timing
    t, cpu = time.perf_counter(), _cpu()
    total_one = np.zeros(D_OUT)
    for i in range(n_chunks):
        total_one += f(make_chunk(i, rows), W, b).sum(axis=0)
    one, one_cpu = time.perf_counter() - t, _cpu() - cpu

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=args.memory_limit,
    )
    with cluster, distributed.Client(cluster) as client:
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
        idle = client.run(_rss)
        X = da.map_blocks(_chunk_from_info, chunks=((rows,) * n_chunks, (D_IN,)), dtype=np.float64)
        client.run(_start_sampler)
        cpu0, client0 = client.run(_cpu), _cpu()
        t = time.perf_counter()
        total = f(X, W, b).sum(axis=0).compute()  # lazy until here; includes the probe
        many = time.perf_counter() - t
        cpu1, client_cpu = client.run(_cpu), _cpu() - client0
        peaks = client.run(_stop_sampler)
    workers_cpu = sum(cpu1[a] - cpu0[a] for a in cpu0)

    np.testing.assert_allclose(total, total_one, rtol=1e-9)
    print(f"worker memory limit: {limit / 1e6:.0f} MB; batch / limit = {n * D_IN * 8 / limit:.1f}x")
    for addr, peak in peaks.items():
        print(
            f"  worker {addr}: idle {idle[addr] / 1e6:.0f} MB, peak {peak / 1e6:.0f} MB "
            f"({peak / limit:.0%} of the limit)"
        )
    print(f"one process, streamed: {one:6.2f} s  {n / one:12,.0f} examples/s")
    print(
        f"cluster (2 workers):   {many:6.2f} s  {n / many:12,.0f} examples/s  ({one / many:.2f}x)"
    )
    print(
        f"CPU seconds: one process {one_cpu:.1f}; cluster {workers_cpu:.1f} in the workers "
        f"+ {client_cpu:.1f} in the client ({(workers_cpu + client_cpu) / one_cpu:.2f}x) "
        "(on a shared machine the CPU time, not the wall time, shows the overhead)"
    )
    print("results agree (sum of every output, rtol 1e-9)")


if __name__ == "__main__":
    main()
