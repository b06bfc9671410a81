"""Connecting to a Dask cluster, and the Dask modules behind the optional-import helper."""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any

from salutary._optional import import_optional

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["CONNECT_TIMEOUT", "broadcast", "compute", "dask_module", "get_client", "n_workers"]

#: Seconds :func:`get_client` waits for a scheduler.
CONNECT_TIMEOUT = 10.0


def dask_module(name: str) -> ModuleType:
    """``dask``, ``dask.array``, ``dask.dataframe`` ...: imported on first use, with an
    error naming ``pip install 'salutary[dask]'`` when Dask is missing."""
    return import_optional(name, what="the Dask engine")


async def _identity(address: str, timeout: float) -> Any:
    connect = dask_module("distributed.comm").connect

    async def ask() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    # connect() does not bound its handshake by the timeout: a server that accepts the
    # connection but never answers would hang it.
    try:
        return await asyncio.wait_for(ask(), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None


def _check_scheduler(address: str, timeout: float) -> None:
    """ConnectionError unless a dask scheduler answers at ``address`` (plain TCP).

    A refused TCP connection fails at once (``distributed`` itself would retry until
    the timeout), and probing before creating the ``Client`` keeps a failed attempt
    from leaving a half-built client behind (whose clean-up prints a traceback).
    """
    addressing = dask_module("distributed.comm.addressing")

    def fail(reason: object) -> ConnectionError:
        return ConnectionError(f"cannot connect to dask scheduler {address!r}: {reason}")

    try:
        scheme, location = addressing.parse_address(address)
        endpoint = addressing.parse_host_port(location) if scheme in ("tcp", "tls") else None
    except ValueError as exc:
        raise fail(exc) from None
    if endpoint is not None:
        try:
            socket.create_connection(endpoint, timeout=timeout).close()
        except OSError as exc:
            raise fail(exc.strerror or exc) from None
    if scheme != "tcp":
        return  # other transports need their own settings (TLS certificates): let Client try
    with ThreadPoolExecutor(1) as pool:  # works whether or not an event loop is running
        try:
            reply = pool.submit(asyncio.run, _identity(address, timeout)).result()
        except Exception as exc:
            raise fail(exc) from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise fail("the server there is not a dask scheduler")


def get_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    timeout: float | None = None,
) -> Client:
    """A ``distributed.Client``: connected to ``scheduler``, or to a new local cluster.

    Parameters
    ----------
    scheduler : str or None
        Address of a running scheduler (``tcp://host:8786``). ``None`` starts a
        ``LocalCluster`` of worker processes listening on 127.0.0.1 only (one thread
        each, HTTP on a random loopback port), owned by the client: ``client.close()``
        stops it.
    n_workers : int or None
        Workers of the local cluster (default: one per core). Only without
        ``scheduler``.
    timeout : float or None
        Seconds to wait for the scheduler (default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    ConnectionError
        ``cannot connect to dask scheduler ADDRESS: reason``.
    ImportError
        When ``dask.distributed`` is not installed.
    """
    Client = dask_module("distributed").Client
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    if scheduler is not None:
        if n_workers is not None:
            raise ValueError("n_workers applies to a local cluster, not to a scheduler address")
        _check_scheduler(scheduler, timeout)
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectionError(
                f"cannot connect to dask scheduler {scheduler!r}: {exc}"
            ) from None
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    return Client(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # None would still host the scheduler's HTTP server, on 0.0.0.0:8787.
        dashboard_address="127.0.0.1:0",
    )


def compute(obj: Any, client: Client | None) -> Any:
    """Compute a Dask collection or delayed object on ``client`` (or Dask's default)."""
    if client is not None:
        return client.compute(obj, sync=True)
    return dask_module("dask").compute(obj)[0]


def broadcast(obj: Any, client: Client | None) -> Any:
    """``obj`` as one node of the graph: scattered to every worker, or one delayed key."""
    if client is not None:
        return client.scatter(obj, broadcast=True, hash=False)
    return dask_module("dask").delayed(
        obj, name=f"shared-{type(obj).__name__}-{os.urandom(8).hex()}"
    )


def n_workers(client: Client | None) -> int:
    """Worker threads of ``client`` (the CPUs of this machine without one)."""
    if client is None:
        return os.cpu_count() or 1
    return max(1, len(client.nthreads()))
