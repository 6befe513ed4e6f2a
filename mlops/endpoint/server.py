"""The endpoint's HTTP server: one asyncio event loop, in the thread that serves.

Small requests are answered inline on that thread: the model call is CPU-bound and
holds the GIL, so more threads only add GIL hand-offs. A large one (a body of
``offload_bytes`` or more) goes to worker processes, one per core
(:mod:`mlops.endpoint.offload`), so one client's 6 MB CSV does not stall everyone
else's single rows. No per-request logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from mlops.endpoint.capture import CaptureWriter
from mlops.endpoint.connection import Connection
from mlops.endpoint.errors import PortInUse
from mlops.endpoint.model import LocalModel, load_model
from mlops.endpoint.offload import Offloader

_IDLE_TIMEOUT_S = 65.0  # keep-alive connections idle longer than this are closed
_monotonic = time.monotonic


class EndpointServer:
    """One endpoint's HTTP server: one asyncio event loop, in the thread that serves.

    ``serve_forever()`` runs the loop in the calling thread until ``shutdown()`` (from
    any thread); ``server_close()`` stops listening and ends open connections. Every
    request is answered inline on that one thread: the model call is CPU-bound and
    holds the GIL anyway, and one thread spares the GIL hand-offs a thread per
    connection costs. ``model`` may be swapped while serving.

    ``model_threads`` caps the OpenMP threads one prediction may use in the serving
    thread (None: the library's default). A machine's other cores run the clients and
    the other processes; an OpenMP team per request on top of that oversubscribes
    them, and one descheduled team member stalls the whole prediction (single-row
    gradient boosting: ~1 ms becomes 25-100 ms on a busy 2-core machine).
    """

    # many clients connecting at once queue here instead of being reset
    request_queue_size = 1024
    # bodies this large are answered off the event loop (a single CSV row is ~100 bytes;
    # 1,000 rows take ~5 ms to predict inline)
    offload_bytes = 64 * 1024

    def __init__(
        self,
        address: tuple[str, int],
        model: LocalModel,
        capture: CaptureWriter | None = None,
        model_threads: int | None = 1,
    ) -> None:
        self._model = model
        self.capture = capture
        self.model_threads = model_threads
        self._openmp = openmp_controller() if model_threads else None
        self._offloader: Offloader | None = None  # started by the first large request
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[Connection] = set()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(self.request_queue_size)
            self.server_address: tuple[Any, ...] = sock.getsockname()
            loop = asyncio.new_event_loop()
            # accepts once the loop runs, in serve_forever()
            self._listener = loop.run_until_complete(
                loop.create_server(
                    lambda: Connection(self), sock=sock, backlog=self.request_queue_size
                )
            )
        except BaseException:
            if loop is not None:
                loop.close()
            sock.close()
            raise
        self.socket = sock
        self._loop = loop
        self._lock = threading.Lock()
        self._serving_thread: int | None = None
        self._shutdown_request = False
        self._closed = False
        self._is_shut_down = threading.Event()
        self._is_shut_down.set()
        self._tick: asyncio.TimerHandle | None = None

    @property
    def model(self) -> LocalModel:
        return self._model

    @model.setter
    def model(self, model: LocalModel) -> None:
        """Swap the model: large requests go to a new pool that loads the new one."""
        self._model = model
        old, self._offloader = self._offloader, None
        if old is not None:
            old.close()

    def offloader(self) -> Offloader:
        if self._offloader is None:
            self._offloader = Offloader(self._model, self.model_threads)
        return self._offloader

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host!s}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve in this thread until :meth:`shutdown`.

        ``poll_interval``: how often idle keep-alive connections are looked for (and,
        in the main thread, how soon a signal handler gets to run at the latest).
        """
        with self._lock:
            if self._shutdown_request:  # shutdown() came first: return at once
                self._shutdown_request = False
                return
            if self._closed:
                raise RuntimeError("the server is closed")
            if self._serving_thread is not None:
                raise RuntimeError("the server is already serving")
            self._serving_thread = threading.get_ident()
            self._is_shut_down.clear()
        limiter = None
        try:
            if self._openmp is not None:  # a per-thread setting: this thread runs the model
                limiter = self._openmp.limit(limits=self.model_threads)
            self._tick = self._loop.call_later(poll_interval, self._sweep, poll_interval)
            self._loop.run_forever()
        finally:
            if self._tick is not None:
                self._tick.cancel()
            if limiter is not None:
                limiter.restore_original_limits()
            with self._lock:
                self._serving_thread = None
                self._shutdown_request = False
                closed = self._closed
            try:
                if closed:  # server_close() came while serving
                    self._close_now()
            finally:
                self._is_shut_down.set()

    def _sweep(self, poll_interval: float) -> None:
        """Close connections idle for longer than the keep-alive timeout."""
        deadline = _monotonic() - _IDLE_TIMEOUT_S
        for connection in [c for c in self._connections if c.last_active < deadline]:
            connection.abort()
        self._tick = self._loop.call_later(poll_interval, self._sweep, poll_interval)

    def _stop(self) -> None:
        if self._serving_thread is not None:
            self._loop.stop()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it returned (thread-safe)."""
        with self._lock:
            thread = self._serving_thread
            if thread is None:
                self._shutdown_request = True  # a serve_forever() about to start returns
                return
            self._loop.call_soon_threadsafe(self._stop)
        if thread != threading.get_ident():
            self._is_shut_down.wait()

    def server_close(self) -> None:
        """Stop listening and end open keep-alive connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._serving_thread
            if thread is not None:  # serve_forever() closes on its way out
                self._loop.call_soon_threadsafe(self._stop)
        if thread is None:
            self._close_now()
        elif thread != threading.get_ident():
            self._is_shut_down.wait()

    def _close_now(self) -> None:
        """Close the listener and the connections, then the loop (which is not running)."""
        loop = self._loop
        try:
            for connection in list(self._connections):
                connection.abort()
            self._listener.close()
            loop.run_until_complete(asyncio.sleep(0))  # runs the transports' closing callbacks
        finally:
            loop.close()
            self.socket.close()
            if self._offloader is not None:
                self._offloader.close()

    def __enter__(self) -> EndpointServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_close()


def _describe(model: LocalModel, program: str | None) -> str:
    """What the banner says: this project's model by digest, a user's by its module."""
    parts = []
    if model.model_sha256:
        parts.append(f"model {model.model_sha256[:12]}")
    if model.features:
        parts.append(f"({len(model.features)} features)")
    if program or not model.features:
        parts.append(f"with {program or 'its own serving module (code/inference.py)'}")
    return " ".join(parts) or "the model"


def openmp_controller() -> Any:
    """threadpoolctl's handle on the loaded OpenMP runtimes, or None without any."""
    try:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency
    except ImportError:
        return None
    controller = ThreadpoolController().select(user_api="openmp")
    return controller if controller.lib_controllers else None


def make_server(
    model: LocalModel,
    host: str = "127.0.0.1",
    port: int = 8080,
    capture: CaptureWriter | None = None,
    *,
    model_threads: int | None = 1,
) -> EndpointServer:
    """Bind an endpoint server for ``model`` (port 0 picks a free port; see ``.url``).

    ``model_threads``: OpenMP threads per prediction (see :class:`EndpointServer`).

    Raises
    ------
    PortInUse
        When another process already listens on ``host:port``.
    """
    try:
        return EndpointServer((host, port), model, capture, model_threads)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so a supervised server also flushes its capture."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(
    model_dir_or_tarball: Path | str,
    host: str = "127.0.0.1",
    port: int = 8080,
    capture: CaptureWriter | None = None,
    *,
    model_threads: int | None = 1,
    on_ready: Callable[[EndpointServer], None] | None = None,
    program: str | None = None,
) -> None:
    """Serve a model in the foreground until Ctrl-C (or SIGTERM); then close cleanly.

    ``capture`` is closed (flushed) on the way out, whatever happens. Raises
    ``PortInUse`` before serving when the port is taken.
    """
    with contextlib.ExitStack() as stack:
        if capture is not None:
            stack.callback(capture.close)  # last out: flushes what the server captured
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-endpoint-"))
        model = load_model(model_dir_or_tarball, workdir, program)
        server = make_server(model, host, port, capture, model_threads=model_threads)
        stack.callback(server.server_close)
        server.offloader()  # its worker processes load the model while the server starts
        if on_ready is not None:
            on_ready(server)
        else:
            print(
                f"serving {_describe(model, program)} on {server.url} - POST /invocations, "
                "GET /ping; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
        with _stop_on_sigterm(), contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
