"""Large requests answered away from the event loop: in worker processes of their own.

A 6 MB CSV spends ~1 s in pandas and the model, much of it in C calls that keep the
GIL: in a thread beside the event loop it still held every other client (p99 of single
rows 150 ms; 2.7 ms without it). So a model that :func:`~mlops.endpoint.model.load_model`
made (it knows its folder and serving module) is loaded again in a pool of worker
processes, one per core, started by ``mlops serve`` / ``python -m mlops.endpoint`` (or
by the first large request of a server made otherwise); a large
request's body goes there and its answer comes back, and the event loop goes on with
everyone else. A model built in-process from serving functions (tests) cannot be
loaded elsewhere: its large requests go to a thread pool instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
from typing import Any

from mlops.endpoint.errors import InvocationError

_MODEL: Any = None  # in a worker process: its own copy of the model


def _limit(threads: int | None) -> None:
    """Cap this thread's OpenMP teams (a per-thread setting), as the serving thread's."""
    if threads:
        from threadpoolctl import ThreadpoolController

        ThreadpoolController().limit(limits=threads, user_api="openmp")


def _load(folder: str, program: str | None, threads: int | None, server: int) -> None:
    global _MODEL
    from mlops.endpoint.model import load_model
    from mlops.localcloud.children import die_with_parent

    die_with_parent()  # a killed server leaves no workers behind...
    if os.getppid() != server:  # ...even one killed before this worker got here
        os._exit(0)

    _MODEL = load_model(folder, program=program)
    _limit(threads)


def _ready() -> bool:
    return _MODEL is not None


def _answer(model: Any, body: bytes, content_type: str, accept: str | None) -> tuple[Any, ...]:
    """``("ok", answer, type)`` or ``("error", status, message)``: plain values, picklable."""
    try:
        answer, kind = model.invoke(body, content_type, accept)
    except InvocationError as exc:
        return ("error", int(exc.status), exc.message)
    return ("ok", answer, kind)


def _predict(body: bytes, content_type: str, accept: str | None) -> tuple[Any, ...]:
    """In a worker process: :func:`_answer` with its own copy of the model."""
    return _answer(_MODEL, body, content_type, accept)


class Offloader:
    """The pool a server sends its large requests to."""

    def __init__(self, model: Any, threads: int | None, workers: int | None = None) -> None:
        self.model = model
        workers = workers or os.cpu_count() or 2
        origin = getattr(model, "origin", None)
        self.processes = origin is not None
        if origin is not None:
            self.pool: concurrent.futures.Executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of OpenMP threads
                initializer=_load,
                initargs=(origin[0], origin[1], threads, os.getpid()),
            )
            for _ in range(workers):  # start them now, not on the first large request
                self.pool.submit(_ready)
        else:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="endpoint-worker",
                initializer=_limit,
                initargs=(threads,),
            )

    def submit(self, body: bytes, content_type: str, accept: str | None) -> asyncio.Future[Any]:
        """The answer, as :func:`_answer` gives it, on the running loop."""
        loop = asyncio.get_running_loop()
        if self.processes:
            return loop.run_in_executor(self.pool, _predict, body, content_type, accept)
        return loop.run_in_executor(self.pool, _answer, self.model, body, content_type, accept)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
