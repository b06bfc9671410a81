"""Time one round's pool scoring and top-b on Dask against the in-memory path.

Usage::

    python benchmarks/bench_dask.py [--n 1000000] [--d 384] [--k 10] [--budget 100]
        [--workers 1 2 4] [--repeats 3] [--partition-rows 65536] [--sweep]

A float32 pool of ``--n`` rows is generated twice from the same per-partition seeds: in
this process (for the in-memory path) and directly on the workers of a local cluster
(``LocalCluster``, one thread per worker, on 127.0.0.1), so it never travels. For each
worker count the script times ``select_salutary`` (scoring every partition where it
lives, local top-b, tree reduction) and checks that its rows, labels and scores equal
``best_labels`` + ``top_k`` in memory bit for bit. Prints Markdown tables (median of
``--repeats`` runs) ready for docs/scaling.md. ``--sweep`` adds rows for N/2, N/4, D/2,
D/4 and other K, in memory and on 2 workers.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from functools import partial

import numpy as np

from salutary import InfluenceFactors, LogisticModel
from salutary import distributed as sd
from salutary.strategies import top_k


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def partition_bounds(n, rows):
    starts = list(range(0, n, rows))
    return [(a, min(a + rows, n)) for a in starts]


def make_block(i, rows, d, seed=0):
    return np.random.default_rng([seed, i]).standard_normal((rows, d), dtype=np.float32)


def local_pool(n, d, rows):
    X = np.empty((n, d), dtype=np.float32)
    for i, (a, b) in enumerate(partition_bounds(n, rows)):
        X[a:b] = make_block(i, b - a, d)
    return X


def cluster_pool(client, n, d, rows):
    """The same pool, generated on the workers and kept there."""
    import dask
    import dask.array as da

    blocks = [
        da.from_delayed(dask.delayed(make_block)(i, b - a, d), (b - a, d), dtype=np.float32)
        for i, (a, b) in enumerate(partition_bounds(n, rows))
    ]
    pool = client.persist(da.concatenate(blocks))
    client.wait_for_workers(1)
    from distributed import wait

    wait(pool)
    return pool


def make_factors(d, k, n_train=2000, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, d)) / np.sqrt(d)
    X, X_val = rng.normal(size=(n_train, d)), rng.normal(size=(n_train // 2, d))
    y = (X @ W.T + rng.gumbel(size=(n_train, k))).argmax(1)
    y_val = (X_val @ W.T + rng.gumbel(size=(len(X_val), k))).argmax(1)
    model = LogisticModel(l2=50.0).fit(X, y)
    t0 = time.perf_counter()
    factors = InfluenceFactors().fit(model, X, X_val, y_val)
    return factors, time.perf_counter() - t0


def in_memory(factors, X, budget, seed):
    labels, scores = factors.best_labels(X)
    idx = top_k(scores, budget, np.random.default_rng(seed))
    return idx, factors.classes_[labels[idx]], scores[idx]


def check_equal(got, expected):
    for g, e in zip(got, expected, strict=True):
        if g.dtype != e.dtype or not np.array_equal(g, e):
            raise AssertionError("the dask result differs from the in-memory result")


def bench_case(n, d, k, budget, workers, repeats, rows, clients, seed=7):
    factors, t_factors = make_factors(d, k)
    X = local_pool(n, d, rows)
    t_score, _ = timed(partial(factors.best_labels, X), repeats)
    t_mem, expected = timed(partial(in_memory, factors, X, budget, seed), repeats)
    X = None  # free the in-memory pool before the workers build theirs
    out = {
        "n": n, "d": d, "k": k, "factors": t_factors, "score": t_score, "memory": t_mem,
        "dask": {},
    }  # fmt: skip
    for m in workers:
        client = clients[m]
        pool = cluster_pool(client, n, d, rows)
        run = partial(sd.select_salutary, factors, pool, budget, seed, client=client)
        run()  # warm up: imports on the workers
        t, got = timed(run, repeats)
        check_equal(got, expected)
        out["dask"][m] = t
        pool = run = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partition-rows", type=int, default=16 * 4096)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()

    sweep_workers = 2 if 2 in args.workers else args.workers[0]
    clients = {m: sd.get_client(None, m) for m in sorted(set(args.workers))}
    for name in list(logging.root.manager.loggerDict):  # no INFO lines when clusters stop
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import dask

        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, numpy {np.__version__}, "
            f"dask {dask.__version__}; float32 pool, budget {args.budget}, "
            f"{args.partition_rows} rows per partition, median of {args.repeats}\n"
        )
        main_case = bench_case(
            args.n, args.d, args.k, args.budget, args.workers, args.repeats,
            args.partition_rows, clients,
        )  # fmt: skip
        mem = main_case["memory"]
        print(f"N = {args.n:,}, D = {args.d}, K = {args.k}: factors {main_case['factors']:.2f} s "
              f"(client), best_labels alone {main_case['score']:.3f} s in memory\n")  # fmt: skip
        print("| engine | workers | seconds (score + top-b) | rows/s | vs in-memory |")
        print("|---|---:|---:|---:|---:|")
        print(f"| memory | - | {mem:.3f} | {args.n / mem:,.0f} | 1.00 |")
        for m, t in main_case["dask"].items():
            print(f"| dask | {m} | {t:.3f} | {args.n / t:,.0f} | {mem / t:.2f} |")
        small = 2 * 4096
        factors, _ = make_factors(args.d, args.k)
        print(f"\nFixed cost of a round (pool of {small:,} rows in 2 partitions):\n")
        print("| workers | seconds |")
        print("|---:|---:|")
        for m in args.workers:
            pool = cluster_pool(clients[m], small, args.d, 4096)
            run = partial(sd.select_salutary, factors, pool, args.budget, 0, client=clients[m])
            run()
            print(f"| {m} | {timed(run, max(args.repeats, 5))[0]:.3f} |")
        if args.sweep:
            cases = [
                (args.n // 4, args.d, args.k), (args.n // 2, args.d, args.k),
                (args.n, args.d // 4, args.k), (args.n, args.d // 2, args.k),
                (args.n, args.d, 2), (args.n, args.d, 20),
            ]  # fmt: skip
            print(f"\nSweep (dask on {sweep_workers} workers):\n")
            print("| N | D | K | factors s | memory s | dask s |")
            print("|---:|---:|---:|---:|---:|---:|")
            rows = [main_case]
            for n, d, k in cases:
                rows.append(
                    bench_case(n, d, k, args.budget, [sweep_workers], args.repeats,
                               args.partition_rows, clients)
                )  # fmt: skip
            for r in sorted(rows, key=lambda r: (r["n"], r["d"], r["k"])):
                print(
                    f"| {r['n']:,} | {r['d']} | {r['k']} | {r['factors']:.2f} | "
                    f"{r['memory']:.3f} | {r['dask'][sweep_workers]:.3f} |"
                )
    finally:
        for client in clients.values():
            client.close()


if __name__ == "__main__":
    main()
