"""The local cloud: moto's server plus the stand-ins that make its resources act.

:class:`LocalCloud` runs moto's ``ThreadedMotoServer`` in this process (so its
backends can be hooked, see :mod:`mlops.localcloud.patches`) and, beside it,
the job runner, the event router, the endpoint host and an optional schedule
tick. The background process (``python -m mlops.localcloud``) is one
``LocalCloud``; tests use it in-process as a context manager.

A small control API shares the moto port, under ``/_localcloud/``:
``GET health``, ``GET status``, ``GET deliveries``, ``POST fire_schedule``
(``{"rule": name}``) and ``POST wait_idle`` (``{"timeout": seconds}``);
:mod:`mlops.localcloud.client` calls it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, iso_z
from mlops.localcloud.control import ControlApp
from mlops.localcloud.endpoints import EndpointHost
from mlops.localcloud.events import endpoint_event, training_job_event
from mlops.localcloud.model_cache import ModelLoader
from mlops.localcloud.processing import ProcessingRunner
from mlops.localcloud.router import EventRouter
from mlops.localcloud.runner import JobRunner
from mlops.localcloud.state import HOST, LocalCloudError
from mlops.localcloud.transform import TransformRunner
from mlops.localcloud.tuning import Tuner

logger = logging.getLogger(__name__)

_active_lock = threading.Lock()
_active: LocalCloud | None = None  # moto's backends are per process: one local cloud at a time

_MLOPS_PARENT = Path(__file__).resolve().parents[2]  # the folder holding the mlops package


def _check_bindable(port: int) -> None:
    """Raise OSError when ``port`` cannot be bound (werkzeug would print and exit instead)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))


def _reset_moto() -> None:
    from moto.moto_api import _internal

    _internal.moto_api_backend.reset()


class LocalCloud:
    """moto server + job runners + event router + endpoint host, in this process.

    Parameters
    ----------
    port : int
        Port on 127.0.0.1; 0 picks a free one (see :attr:`port` after start).
    state_dir : Path, optional
        Logs, ``events.jsonl`` and unpacked models; a temporary folder when None.
    tick : float, optional
        Fire every enabled schedule rule every ``tick`` seconds (off when None).
    repo_root : Path, optional
        Where Lambda handlers are imported from, their working directory (default: cwd).
    python_path : sequence of Path
        More folders for the handlers' ``PYTHONPATH`` (after ``repo_root``).
    max_jobs : int
        Training jobs run at the same time (the others queue).
    model_loader : callable, optional
        ``(model.tar.gz bytes, workdir) -> model`` for endpoints (default: LocalModel).
    update_grace : float
        Seconds ``UpdateEndpoint`` waits for the update before answering.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        state_dir: Path | None = None,
        tick: float | None = None,
        repo_root: Path | None = None,
        python_path: Sequence[Path] = (),
        max_jobs: int = 1,
        model_loader: ModelLoader | None = None,
        update_grace: float = 5.0,
        persist: bool = False,
    ) -> None:
        self.requested_port = port
        self.persist = persist
        self.restored: dict[str, Any] | None = None
        self._saver: Any = None
        self.port = port
        self.tick = tick
        self.repo_root = Path(repo_root or Path.cwd()).resolve()
        self.python_path = [self.repo_root, *[Path(p).resolve() for p in python_path]]
        if _MLOPS_PARENT not in self.python_path:
            self.python_path.append(_MLOPS_PARENT)  # mlops.localcloud.invoke itself
        self.max_jobs = max_jobs
        self.model_loader = model_loader
        self.update_grace = update_grace
        self._tmp: Any = None
        self._state_dir_arg = state_dir
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else Path()
        self.started_at = ""
        self.activity = Activity()
        self._server: Any = None
        self._patcher: Any = None
        self._tick_stop = threading.Event()
        self._tick_thread: threading.Thread | None = None
        self._started = False
        # set in start()
        self.clients: ClientFactory
        self.runner: JobRunner
        self.router: EventRouter
        self.endpoints: EndpointHost  # and the transform, processing and tuning runners

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> LocalCloud:
        """Bind the port, hook moto, start the workers.

        Raises LocalCloudError when the port is taken or another LocalCloud runs here.
        """
        global _active
        with _active_lock:
            if _active is not None:
                raise LocalCloudError(
                    f"a local cloud already runs in this process ({_active.endpoint_url}); "
                    "moto's state is per process, so only one can"
                )
            _active = self
        try:
            self._start()
        except BaseException:
            self._teardown()
            raise
        return self

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        if self._state_dir_arg is None:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="mlops-localcloud-")
            self.state_dir = Path(self._tmp.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        _reset_moto()
        if self.persist:
            self._restore()

        cloud = self

        class _Server(ThreadedMotoServer):
            """moto's threaded server, bound in the caller (a taken port raises here)."""

            def start(self) -> None:
                app = ControlApp(cloud, DomainDispatcherApplication(create_backend_app))
                try:
                    self._server = make_server(
                        self._ip_address,
                        self._port,
                        app,
                        threaded=True,
                        request_handler=MotoRequestHandler,
                    )
                except SystemExit:  # werkzeug exits on a bind error; the port was taken meanwhile
                    raise OSError(errno.EADDRINUSE, "Address already in use") from None
                server = self._server
                self._thread = threading.Thread(
                    # a short poll: shutdown() waits for it (0.5 s by default)
                    target=lambda: server.serve_forever(poll_interval=0.05),
                    name="localcloud-moto",
                    daemon=True,
                )
                self._thread.start()
                self._server_ready_event.set()

        server = _Server(ip_address=HOST, port=self.requested_port, verbose=False)
        try:
            _check_bindable(self.requested_port)
            server.start()
        except OSError as exc:
            raise LocalCloudError(
                f"port {self.requested_port} is already in use on {HOST} ({exc.strerror}): "
                "stop whatever listens there or pick another port"
            ) from exc
        self._server = server
        self.port = server.get_host_and_port()[1]
        self.started_at = iso_z()

        self.clients = ClientFactory(self.endpoint_url)
        self.router = EventRouter(
            clients=self.clients,
            endpoint_url=self.endpoint_url,
            activity=self.activity,
            state_dir=self.state_dir,
            python_path=self.python_path,
            cwd=self.repo_root,
        )
        self.runner = JobRunner(
            clients=self.clients,
            endpoint_url=self.endpoint_url,
            activity=self.activity,
            on_finished=self._job_finished,
            state_dir=self.state_dir,
            max_concurrent=self.max_jobs,
        )
        self.endpoints = EndpointHost(
            clients=self.clients,
            activity=self.activity,
            state_dir=self.state_dir,
            loader=self.model_loader,
            update_grace=self.update_grace,
            on_state_change=self._endpoint_changed,
        )
        shared: dict[str, Any] = {"clients": self.clients, "activity": self.activity}
        publish = self._publish_change
        self.transforms = TransformRunner(
            **shared, models=self.endpoints.models, on_finished=publish
        )
        self.processing = ProcessingRunner(
            **shared, endpoint_url=self.endpoint_url, state_dir=self.state_dir, on_finished=publish
        )
        self.tuner = Tuner(**shared, on_finished=publish)
        from mlops.localcloud import patches

        self._patcher = patches.install(self)
        self.router.start()
        self.runner.start()
        if self.persist:
            from mlops.localcloud.snapshot import Saver

            self._saver = Saver(self.state_dir)
            self._saver.start()
        if self.tick:
            self._tick_thread = threading.Thread(
                target=self._tick_loop, name="localcloud-tick", daemon=True
            )
            self._tick_thread.start()
        self._started = True
        logger.info("local cloud listening on %s (state in %s)", self.endpoint_url, self.state_dir)

    def close(self) -> None:
        """Stop the workers and the server, unhook and reset moto."""
        self._teardown()

    def _teardown(self) -> None:
        global _active
        self._tick_stop.set()
        if self._tick_thread is not None:
            self._tick_thread.join(5)
        for part in ("tuner", "runner", "transforms", "processing", "router", "endpoints"):
            worker = self.__dict__.get(part)
            if worker is not None:
                try:
                    worker.close()
                except Exception:
                    logger.exception("closing the %s failed", part)
        if self._saver is not None:  # after the workers: jobs they stopped are saved so
            self._saver.close()
            self._saver = None
        if self._server is not None and self._server._server is not None:
            self._server._server.shutdown()
            self._server._server.server_close()
            self._server = None
        if self._patcher is not None:
            self._patcher.undo()
            self._patcher = None
            _reset_moto()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        with _active_lock:
            if _active is self:
                _active = None
        self._started = False

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def fire_schedule(self, rule: str) -> int:
        """Fire schedule rule ``rule`` now; the number of Lambda deliveries queued.

        Raises LocalCloudError when no rule of that name has a ScheduleExpression.
        """
        try:
            return self.router.fire_schedule(rule)
        except KeyError as exc:
            raise LocalCloudError(exc.args[0]) from None

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        """Block until no job is queued or running and no event or update is pending.

        Queued data-capture records are written first. False if ``timeout`` passes.
        """
        self.endpoints.flush_capture()
        return self.activity.wait_idle(timeout)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """The Lambda deliveries made so far (also in ``<state_dir>/events.jsonl``)."""
        with self.router._deliveries_lock:
            return list(self.router.deliveries)

    def status(self) -> dict[str, Any]:
        """Counters for ``mlops status``."""
        deliveries = self.deliveries
        return {
            "endpoint_url": self.endpoint_url,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "state_dir": str(self.state_dir),
            "busy": self.activity.busy(),
            "jobs_active": self.runner.running(),
            "deliveries": len(deliveries),
            "deliveries_failed": sum(1 for d in deliveries if d.get("status") != "succeeded"),
            "tick": self.tick,
            "persist": self.persist,
            "restored": self.restored,
        }

    # ------------------------------------------------------------------ internals

    def _restore(self) -> None:
        """The last run's state into moto (LocalCloudError when it cannot be read)."""
        from mlops.localcloud import snapshot

        services = snapshot.restore(self.state_dir)
        if services is None:
            logger.info("no snapshot in %s: starting empty", self.state_dir)
            return
        path = snapshot.snapshot_path(self.state_dir)
        self.restored = {
            "from": str(path),
            "saved_at": iso_z(path.stat().st_mtime),
            "services": services,
            "interrupted_jobs": snapshot.fail_interrupted_jobs(),
        }
        logger.info("restored %s", self.restored)

    def changed(self) -> None:
        """Something changed moto's state: snapshot it soon (when persisting)."""
        if self._saver is not None:
            self._saver.changed()

    def _job_finished(self, job: Any, account: str, region: str) -> None:
        self._publish_change(training_job_event(job, account, region), account, region)

    def _endpoint_changed(self, endpoint: Any, account: str, region: str) -> None:
        self._publish_change(endpoint_event(endpoint, account, region), account, region)

    def _publish_change(self, event: dict[str, Any], account: str, region: str) -> None:
        self.changed()  # a job or endpoint changed state: snapshot, and tell EventBridge
        self.router.publish(event, account, region)

    def _tick_loop(self) -> None:
        assert self.tick
        while not self._tick_stop.wait(self.tick):
            try:
                self.router.fire_all_schedules()
            except Exception:
                logger.exception("schedule tick failed")

    def serve_forever(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (the background process)."""
        stop.wait()
