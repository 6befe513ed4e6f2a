"""Job runner: executes the SageMaker training jobs created on the moto server.

STAND-IN for SageMaker training, which moto lacks (it marks a job Completed at once and
runs nothing). Every ``CreateTrainingJob`` (any client) is hooked in moto's backend
(:mod:`mlops.localcloud.patches`): the job is set ``InProgress`` in the same request and
queued here. Worker threads prepare each under the SageMaker training contract
(:mod:`mlops.localcloud.training`; a ``ContainerEntrypoint`` job in the machine's own
``/opt/ml``, :mod:`mlops.localcloud.opt_ml`), run it in a process group of its own and
supervise it: output to ``<state_dir>/jobs/<job>.log`` and CloudWatch Logs, SIGTERM
then SIGKILL on ``StopTrainingJob`` or past ``MaxRuntimeInSeconds``. Exit 0 is
``Completed``, non-zero ``Failed``, a stop ``Stopped``; then the "SageMaker Training Job
State Change" event goes to EventBridge (``on_finished``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from mlops.localcloud import opt_ml, training_status
from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, moto_now
from mlops.localcloud.children import own_group_dying_with_parent
from mlops.localcloud.state import JOBS_DIR, WORK_DIR
from mlops.localcloud.training import (
    CURRENT_HOST,
    JobFailed,
    Launch,
    MetricScraper,
    Workspace,
    failure_reason,
    prepare,
    upload_outputs,
)

logger = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 20
_STOP_GRACE_S = 5.0
_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@dataclass
class _Entry:
    name: str
    account: str
    region: str
    stop: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class _Outcome:
    """How the job's process ended."""

    returncode: int
    stopped: bool
    timed_out: bool
    stderr_tail: list[str]
    metrics: list[dict[str, Any]]


class JobRunner:
    """Queue of training jobs and the worker threads that run them.

    Parameters
    ----------
    clients : ClientFactory
        boto3 clients bound to the local cloud (S3 and CloudWatch Logs).
    endpoint_url : str
        Given to jobs as ``AWS_ENDPOINT_URL``.
    activity : Activity
        Counts queued and running jobs (``wait_idle``).
    on_finished : callable
        Called with ``(job, account, region)`` when a job reaches a terminal status,
        before it stops counting as activity (the router publishes the event there).
    state_dir : Path, optional
        Job logs go to ``<state_dir>/jobs/<job>.log``.
    max_concurrent : int
        Jobs run at the same time; the others wait in the queue.
    """

    def __init__(
        self,
        *,
        clients: ClientFactory,
        endpoint_url: str,
        activity: Activity,
        on_finished: Callable[[Any, str, str], None],
        state_dir: Path | None = None,
        max_concurrent: int = 1,
    ) -> None:
        self.clients = clients
        self.endpoint_url = endpoint_url
        self.activity = activity
        self.on_finished = on_finished
        self.state_dir = state_dir
        self._queue: Queue[_Entry | None] = Queue()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"localcloud-job-{i}", daemon=True)
            for i in range(max(1, max_concurrent))
        ]

    # ------------------------------------------------------------------ lifecycle

    @property
    def work_root(self) -> Path | None:
        """Where jobs' workspaces go: in the state folder, so a killed cloud's are found."""
        return None if self.state_dir is None else self.state_dir / WORK_DIR

    def start(self) -> None:
        root = self.work_root
        if root is not None:  # what a killed local cloud left behind
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            entry.stop.set()
            self._kill(entry)
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------------ API hooks

    def submit(self, job: Any, account: str, region: str) -> None:
        """Called inside ``CreateTrainingJob``: the job becomes InProgress and queued."""
        training_status.mark_queued(job)
        entry = _Entry(job.training_job_name, account, region)
        with self._lock:
            self._entries[(account, region, entry.name)] = entry
        self.activity.begin("job")
        self._queue.put(entry)

    def stop(self, job: Any, account: str, region: str) -> None:
        """``StopTrainingJob``: Stopping now; Stopped once the process has ended."""
        training_status.check_stoppable(job)
        with self._lock:
            entry = self._entries.get((account, region, job.training_job_name))
            queued = entry is not None and not entry.started
            if entry is not None:
                entry.stop.set()
        if entry is None or queued:
            # not started yet: nothing to kill, the worker will skip it
            self._finish(
                job, entry or _Entry(job.training_job_name, account, region), "Stopped", "Stopped"
            )
            return
        job.training_job_status = "Stopping"
        training_status.transition(job, "Stopping", "Stopping the training job")
        # the worker sees entry.stop, sends SIGTERM, then marks the job Stopped

    def running(self) -> list[str]:
        with self._lock:
            return [e.name for e in self._entries.values()]

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                self._run(entry)
            except Exception:  # never let a worker die
                logger.exception("training job %s: unexpected error", entry.name)
            finally:
                with self._lock:
                    self._entries.pop((entry.account, entry.region, entry.name), None)
                self.activity.end("job")

    def _backend_job(self, entry: _Entry) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[entry.account][entry.region].training_jobs.get(entry.name)

    def _run(self, entry: _Entry) -> None:
        with self._lock:
            entry.started = True
            stopped_while_queued = entry.stop.is_set()
        job = self._backend_job(entry)
        if job is None or stopped_while_queued:
            return  # deleted meanwhile (a reset), or stopped (and finished) by StopTrainingJob
        if self._closing:
            self._finish(job, entry, "Stopped", "Stopped", reason="the local cloud shut down")
            return
        try:
            with self._workspace(job, entry) as workspace:
                self._execute(job, entry, workspace)
        except JobFailed as exc:
            self._finish(job, entry, "Failed", "Failed", reason=str(exc))
        except opt_ml.OptMlError as exc:
            self._finish(job, entry, "Failed", "Failed", reason=f"ClientError: {exc}")
        except Exception as exc:
            logger.exception("training job %s", entry.name)
            self._finish(job, entry, "Failed", "Failed", reason=f"InternalServerError: {exc}")

    @contextlib.contextmanager
    def _workspace(self, job: Any, entry: _Entry) -> Iterator[Workspace]:
        """A folder of its own, or (a ``ContainerEntrypoint``: the v3 SDK's drivers use
        the container's paths) the machine's ``/opt/ml``; nothing of it left after."""
        if (job.algorithm_specification or {}).get("ContainerEntrypoint"):
            workspace = Workspace(opt_ml.ML_ROOT)
            with opt_ml.claimed(
                [workspace.code, workspace.input, workspace.model, workspace.output]
            ):
                yield workspace
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"mlops-job-{entry.name[:40]}-", dir=self.work_root))
        try:
            yield Workspace(workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, job: Any, entry: _Entry, workspace: Workspace) -> None:
        s3 = self.clients("s3", entry.region)
        job.training_start_time = moto_now()
        training_status.transition(job, "Downloading", "Downloading input data")
        launch = prepare(job, s3, workspace, region=entry.region, endpoint_url=self.endpoint_url)
        training_status.transition(
            job, "Training", "Training image download completed. Training in progress."
        )
        outcome = self._run_process(job, entry, launch)
        job.final_metric_data_list = outcome.metrics or None

        if outcome.timed_out:
            max_s = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
            upload_outputs(job, s3, workspace, tolerate=True)
            self._finish(
                job,
                entry,
                "Stopped",
                "MaxRuntimeExceeded",
                reason=f"MaxRuntimeExceeded: Training job exceeded MaxRuntimeInSeconds "
                f"provided ({max_s} seconds)",
            )
            return
        if outcome.stopped:
            upload_outputs(job, s3, workspace, tolerate=True)
            self._finish(job, entry, "Stopped", "Stopped")
            return
        if outcome.returncode != 0:
            raise JobFailed(
                failure_reason(
                    workspace.output,
                    outcome.returncode,
                    outcome.stderr_tail,
                    launch.display_command,
                )
            )

        training_status.transition(job, "Uploading", "Uploading generated training model")
        upload_outputs(job, s3, workspace, tolerate=False)
        self._finish(job, entry, "Completed", "Completed")

    # ------------------------------------------------------------------ the process

    def _run_process(self, job: Any, entry: _Entry, launch: Launch) -> _Outcome:
        """Run the entry point until it exits, is stopped or runs out of time."""
        max_s = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + float(max_s) if max_s else None
        scraper = MetricScraper(job)
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        log_lines: list[tuple[float, str]] = []
        log_lock = threading.Lock()
        log_file = self._log_path(entry.name)

        def pump(stream: Any, is_stderr: bool) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with log_lock:
                    log_lines.append((time.time(), line))
                    if log_file is not None:
                        with log_file.open("a") as handle:
                            handle.write(line + "\n")
                if is_stderr:
                    tail.append(line)
                scraper.feed(line)
            stream.close()

        proc = subprocess.Popen(  # noqa: S603 - our own interpreter on the job's entry point
            launch.command,
            cwd=str(launch.cwd),
            env=launch.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # its own process group (a stop kills its children too), SIGKILL when we exit
            preexec_fn=own_group_dying_with_parent,
        )
        entry.proc = proc
        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, False), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, True), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        timed_out = False
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            if entry.stop.is_set():
                self._kill(entry, graceful=True)
            elif deadline is not None and time.monotonic() > deadline:
                timed_out = True
                self._kill(entry, graceful=True)
        for thread in pumps:
            thread.join(5)
        entry.proc = None
        self._push_logs(entry, log_lines)
        stopped = entry.stop.is_set() and not timed_out
        return _Outcome(proc.returncode, stopped, timed_out, list(tail), scraper.final())

    def _kill(self, entry: _Entry, graceful: bool = False) -> None:
        proc = entry.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            return
        if graceful:
            # SIGTERM first, like SageMaker; SIGKILL after a grace period
            try:
                os.killpg(pgid, signal.SIGTERM)
                proc.wait(_STOP_GRACE_S)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def _finish(
        self,
        job: Any,
        entry: _Entry,
        status: str,
        secondary: str,
        reason: str | None = None,
    ) -> None:
        training_status.finish(job, status, secondary, reason)
        logger.info(
            "training job %s: %s%s",
            entry.name,
            status,
            f" ({reason.splitlines()[0]})" if reason else "",
        )
        try:
            self.on_finished(job, entry.account, entry.region)
        except Exception:
            logger.exception("training job %s: state change could not be published", entry.name)

    # ------------------------------------------------------------------ logs

    def _log_path(self, name: str) -> Path | None:
        if self.state_dir is None:
            return None
        folder = self.state_dir / JOBS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.log"

    def _push_logs(self, entry: _Entry, lines: list[tuple[float, str]]) -> None:
        """Copy the job's output to CloudWatch Logs, where SageMaker puts it (best effort)."""
        if not lines:
            return
        try:
            logs = self.clients("logs", entry.region)
            stream = f"{entry.name}/{CURRENT_HOST}-{int(time.time())}"
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=_LOG_GROUP)
            logs.create_log_stream(logGroupName=_LOG_GROUP, logStreamName=stream)
            events = [{"timestamp": int(t * 1000), "message": m or " "} for t, m in lines]
            for start in range(0, len(events), 5000):
                logs.put_log_events(
                    logGroupName=_LOG_GROUP,
                    logStreamName=stream,
                    logEvents=events[start : start + 5000],
                )
        except Exception as exc:
            logger.debug("training job %s: logs not copied to CloudWatch: %s", entry.name, exc)
