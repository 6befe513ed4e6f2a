"""Start, stop and find the background local cloud process.

``start`` spawns ``python -m mlops.localcloud`` detached (its own session, output
in ``<state_dir>/localcloud.log``) and waits until it answers; the process writes
``<state_dir>/local.json`` itself once it listens and removes it when it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlops.localcloud import client
from mlops.localcloud.state import (
    DEFAULT_PORT,
    HOST,
    LOG_FILE,
    LocalCloudError,
    LocalCloudInfo,
    read_info,
    remove_info,
)

_MLOPS_PARENT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something already listens on ``host:port`` (or it cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the server will: a port left in TIME_WAIT by a stopped server is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True  # EADDRINUSE, or EACCES for a privileged port: unusable either way
    return False


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        # our own child (started by start() in this process): reap it if it has exited
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # a zombie: exited, not yet reaped by its parent
    return True


def _is_local_cloud(pid: int) -> bool:
    """The pid runs ``mlops.localcloud`` (not a recycled pid); True where /proc is missing."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return not Path("/proc/self").exists()
    with contextlib.suppress(OSError):
        return b"mlops.localcloud" in cmdline.read_bytes()
    return False


def status(state_dir: Path) -> LocalCloudInfo | None:
    """The running local cloud recorded in ``state_dir``, or None (a stale record is removed)."""
    info = read_info(state_dir)
    if info is None:
        return None
    if not (_alive(info.pid) and _is_local_cloud(info.pid)):
        remove_info(state_dir, info.pid)
        return None
    return info


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        return "\n".join((Path(state_dir) / LOG_FILE).read_text().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(
    state_dir: Path,
    port: int | None = None,
    tick: float | None = None,
    repo_root: Path | None = None,
    *,
    max_jobs: int = 1,
    timeout: float = _START_TIMEOUT_S,
    persist: bool = True,
) -> LocalCloudInfo:
    """Start the background local cloud (or return the one already running there).

    Parameters
    ----------
    state_dir : Path
        Its state folder (``.mlops``): ``local.json``, logs, delivery log.
    port : int, optional
        Port on 127.0.0.1; 5000 when None, a free one when 0.
    tick : float, optional
        Fire schedule rules every ``tick`` seconds (off when None).
    persist : bool
        Restore the last run's snapshot and keep it (``--persist``); a snapshot that
        cannot be read stops the start with the reason.
    repo_root : Path, optional
        The checkout Lambda handlers and ``jobs.inference`` are imported from
        (the current directory when None).

    Raises
    ------
    LocalCloudError
        The port is taken, or the process exited or did not answer in time.
    """
    state_dir = Path(state_dir).resolve()
    existing = status(state_dir)
    if existing is not None:
        return existing
    port = DEFAULT_PORT if port is None else port
    if port == 0:
        port = free_port()
    if port_in_use(port):
        raise LocalCloudError(
            f"port {port} is already in use on {HOST}: stop whatever listens there "
            f"or start the local cloud on another port (e.g. {port + 1})"
        )
    repo_root = Path(repo_root or Path.cwd()).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "mlops.localcloud",
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--repo-root",
        str(repo_root),
        "--max-jobs",
        str(max_jobs),
    ]
    if tick:
        cmd += ["--tick", str(tick)]
    if persist:
        cmd.append("--persist")
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_MLOPS_PARENT), str(repo_root), env.get("PYTHONPATH", "")) if p
    )
    with (state_dir / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(repo_root),
            env=env,
            start_new_session=True,  # survives the CLI process and its Ctrl-C
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise LocalCloudError(
                f"the local cloud exited at start (code {code}); "
                f"{state_dir / LOG_FILE} ends with:\n{_log_tail(state_dir)}"
            )
        info = read_info(state_dir)
        if info is not None and info.pid == proc.pid and client.health(info, timeout=1.0):
            return info
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise LocalCloudError(
        f"the local cloud did not answer within {timeout:.0f} s; "
        f"{state_dir / LOG_FILE} ends with:\n{_log_tail(state_dir)}"
    )


def stop(state_dir: Path, timeout: float = _STOP_TIMEOUT_S) -> bool:
    """Stop the background local cloud; False when none was running."""
    state_dir = Path(state_dir).resolve()
    info = status(state_dir)
    if info is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(info.pid):
        time.sleep(0.05)
    if _alive(info.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5.0
        while time.monotonic() < kill_deadline and _alive(info.pid):
            time.sleep(0.05)
    remove_info(state_dir, info.pid)
    return True
