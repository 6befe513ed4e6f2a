"""Benchmark the local endpoint (``mlops.endpoint``): prints figures, asserts nothing.

    .venv/bin/python bench/bench_endpoint.py [--seconds 10] [--clients 2] [--mlflow]

1. Trains (or reuses, under ``--workdir``) a gradient-boosting model with ``jobs.train``
   on synthetic numeric data.
2. Starts ``python -m mlops.endpoint`` in a subprocess, then runs ``--clients`` client
   processes, each one keep-alive ``http.client.HTTPConnection`` posting single-row CSV
   for ``--seconds``: requests/s, p50 and p99 latency.
3. The limit: the bare pipeline's in-process single-row ``predict_proba`` (and the whole
   in-process serving path ``input_fn -> predict_fn -> output_fn``), and the ratios.
4. One ``POST`` of 10,000 CSV rows.
5. Head-of-line blocking: the same single-row clients while one more client posts
   150,000-row CSVs in a loop; their p99 (target: under 50 ms).
6. 200 connections at once, each sending single rows for 10 s: connection resets and
   other errors (target: none).
7. With ``--mlflow``: the same fitted pipeline saved with mlflow and served by ``mlflow
   models serve --env-manager local``, as it comes and with ``OMP_NUM_THREADS=1``, hit
   by the same clients. The mlflow venv (~1 GB) is created under /tmp on first use.

The machine is shared, so the servers' load tests run interleaved in ``--rounds``
rounds (every server sees the same background load), and in-process timings keep
the best of several short rounds. All traffic stays on 127.0.0.1; every loop is
bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_FEATURES = 10
MLFLOW_VENV = Path("/tmp/mlops-bench-mlflow")


# --------------------------------------------------------------------------- model


def feature_names() -> list[str]:
    return [f"f{i}" for i in range(N_FEATURES)]


def sample_rows(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(n, N_FEATURES))]


def train_model(workdir: Path, rows: int, seed: int) -> Path:
    """Train a gradient-boosting model on synthetic numeric data, or reuse the last one."""
    model_dir = workdir / f"model-{rows}-{seed}"
    if (model_dir / "evaluation.json").exists():
        return model_dir
    from jobs import train

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES)).round(4)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] + rng.normal(scale=0.7, size=rows)
    label = np.where(score > 0.8, 1, 0)
    data = workdir / f"data-{rows}-{seed}"
    data.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        data / "train.csv",
        np.column_stack([x, label]),
        delimiter=",",
        header=",".join([*feature_names(), "label"]),
        comments="",
        fmt=["%.4f"] * N_FEATURES + ["%d"],
    )
    code = train.main(
        [
            "--train", str(data),
            "--model-dir", str(model_dir),
            "--output-data-dir", str(workdir / "output"),
            "--output-dir", str(workdir / "failure"),
            "--model", "gbm",
        ]
    )  # fmt: skip
    if code != 0:
        sys.exit(f"training failed: {(workdir / 'failure' / 'failure').read_text()}")
    return model_dir


def _best_per_call(fns: dict[str, Callable[[], Any]], seconds: float, rounds: int = 10) -> dict:
    """Seconds per call of each function: the best of ``rounds`` short interleaved rounds."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / rounds / len(fns):
                for _ in range(10):
                    fn()
                calls += 10
            best[name] = min(best[name], elapsed / calls)
    return best


def in_process_limits(model_dir: Path, row: str, seconds: float) -> tuple[dict[str, float], str]:
    """Single-row seconds per call in this process: bare ``predict_proba`` and the whole
    serving path with one OpenMP thread (as the endpoint runs requests), and bare with
    the library's default threads."""
    from threadpoolctl import threadpool_limits

    from jobs import inference
    from jobs.calibrate import pipeline_of

    model = inference.model_fn(str(model_dir))
    body = row.encode()
    x = inference._to_model_input(inference.input_fn(body, "text/csv"), model)
    pipeline = model["pipeline"]

    def serving() -> None:
        data = inference.input_fn(body, "text/csv")
        inference.output_fn(inference.predict_fn(data, model), "text/csv")

    with threadpool_limits(1, user_api="openmp"):
        timings = _best_per_call(
            {"bare": lambda: pipeline.predict_proba(x), "serving": serving}, seconds
        )
    timings |= _best_per_call({"bare_default": lambda: pipeline.predict_proba(x)}, seconds / 2)
    return timings, type(pipeline_of(pipeline).steps[-1][1]).__name__


# -------------------------------------------------------------------------- client


def _client(
    port: int, body: bytes, headers: dict[str, str], start_at: float, seconds: float, out: Any
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    while time.time() < start_at:
        time.sleep(0.001)
    end = clock() + seconds
    while (begin := clock()) < end:
        conn.request("POST", "/invocations", body, headers)
        response = conn.getresponse()
        response.read()
        latencies.append(clock() - begin)
        errors += response.status != 200
    conn.close()
    out.send((latencies, errors))
    out.close()


def load_test(
    port: int, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> tuple[list[float], int]:
    """``clients`` processes, one keep-alive connection each, for ``seconds``."""
    context = mp.get_context("spawn")  # no fork of a process that has OpenMP threads
    pipes, processes = [], []
    start_at = time.time() + 1.5  # all clients start together, after spawning
    for _ in range(clients):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_client, args=(port, body, headers, start_at, seconds, sender)
        )
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)
    results = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join(30)
    return [v for result in results for v in result[0]], sum(result[1] for result in results)


@dataclass
class Target:
    """A server under test and what its clients send."""

    name: str
    port: int
    body: bytes
    headers: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def figures(self) -> dict[str, float]:
        values = np.array(self.latencies)
        return {
            "rps": len(values) / self.seconds,
            "p50_ms": float(np.percentile(values, 50) * 1e3),
            "p99_ms": float(np.percentile(values, 99) * 1e3),
        }

    def line(self) -> str:
        f = self.figures()
        return (
            f"  {self.name:<28} {f['rps']:6.0f} req/s   p50 {f['p50_ms']:6.2f} ms   "
            f"p99 {f['p99_ms']:6.2f} ms   ({len(self.latencies)} requests, {self.errors} errors)"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"server on port {port} not ready after {seconds:.0f} s")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------------------- servers


def start_endpoint(stack: contextlib.ExitStack, model_dir: Path) -> Target:
    port = _free_port()
    command = [sys.executable, "-m", "mlops.endpoint", str(model_dir), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    stack.callback(_stop, process)
    _wait_ready(port, process, 60)
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    return Target("mlops.endpoint", port, sample_rows(1)[0].encode(), headers)


def big_request(port: int, rows: int = 10_000) -> tuple[float, int]:
    """Best of 3 seconds for one POST of ``rows`` CSV rows, and the body size."""
    big = ("\n".join(sample_rows(rows, seed=2)) + "\n").encode()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    timings = []
    for _ in range(3):
        begin = time.perf_counter()
        conn.request("POST", "/invocations", big, headers)
        response = conn.getresponse()
        answer = response.read()
        timings.append(time.perf_counter() - begin)
        if response.status != 200 or answer.count(b"\n") != rows:
            sys.exit(f"10k-row request failed: {response.status} {answer[:200]!r}")
    conn.close()
    return min(timings), len(big)


def _big_loop(port: int, body: bytes, stop_at: float, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    seconds, statuses = [], []
    while time.time() < stop_at:
        begin = time.perf_counter()
        conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
        response = conn.getresponse()
        response.read()
        seconds.append(time.perf_counter() - begin)
        statuses.append(response.status)
    conn.close()
    out.send((statuses, seconds))
    out.close()


PAYLOAD_LIMIT = 6 * 1024 * 1024  # SageMaker's InvokeEndpoint limit, the endpoint's too


def head_of_line(port: int, clients: int, seconds: float, rows: int = 150_000) -> None:
    """Single-row clients' latency while another client sends ``rows``-row requests
    (fewer when ``rows`` of these rows would not fit the payload limit)."""
    lines = sample_rows(rows, seed=3)
    while sum(len(line) + 1 for line in lines) > PAYLOAD_LIMIT:
        lines = lines[: int(len(lines) * 0.95)]
    rows = len(lines)
    big = ("\n".join(lines) + "\n").encode()
    context = mp.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    # the big client starts first and runs past the small clients' whole window
    looping = context.Process(target=_big_loop, args=(port, big, time.time() + seconds + 4, sender))
    looping.start()
    sender.close()
    time.sleep(1.0)
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    latencies, errors = load_test(port, sample_rows(1)[0].encode(), headers, clients, seconds)
    statuses, big_seconds = receiver.recv()
    looping.join(60)
    values = np.array(latencies) * 1e3
    print(
        f"\nhead-of-line: {clients} single-row clients for {seconds:.0f} s while one client "
        f"posts {rows:,}-row CSVs ({len(big) / 1e6:.1f} MB) in a loop:"
    )
    print(
        f"  small requests: p50 {np.percentile(values, 50):.2f} ms, p99 "
        f"{np.percentile(values, 99):.2f} ms, max {values.max():.1f} ms "
        f"({len(values)} requests, {errors} errors; target p99 < 50 ms)"
    )
    print(
        f"  large requests: {statuses.count(200)} answered 200 of {len(statuses)}, "
        f"{np.median(big_seconds):.2f} s each (median)"
    )


def _storm_client(port: int, body: bytes, start_at: float, seconds: float, out: Any) -> None:
    """Many connections from one process, each sending one request after another."""
    import selectors

    count = int(out.recv())
    socks, selector = [], selectors.DefaultSelector()
    resets = refused = answered = 0
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    while time.time() < start_at:
        time.sleep(0.001)
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", port))
        if err not in (0, 115):  # EINPROGRESS
            refused += 1
            continue
        socks.append(sock)
        selector.register(sock, selectors.EVENT_WRITE, b"")
    end = time.time() + seconds
    while time.time() < end and selector.get_map():
        for key, events in selector.select(timeout=0.5):
            sock = key.fileobj
            try:
                if events & selectors.EVENT_WRITE:
                    sock.send(request)  # type: ignore[union-attr]
                    selector.modify(sock, selectors.EVENT_READ, b"")
                    continue
                chunk = sock.recv(65536)  # type: ignore[union-attr]
            except (ConnectionResetError, BrokenPipeError):
                resets += 1
                selector.unregister(sock)
                continue
            if not chunk:
                resets += 1  # closed by the server without an answer
                selector.unregister(sock)
                continue
            data = key.data + chunk
            if b"\r\n\r\n" in data and data.endswith(b"\n"):
                answered += 1
                selector.modify(sock, selectors.EVENT_WRITE, b"")
            else:
                selector.modify(sock, selectors.EVENT_READ, data)
    for sock in socks:
        sock.close()
    out.send((answered, resets, refused))
    out.close()


def connection_storm(port: int, connections: int = 200, seconds: float = 10.0) -> None:
    """``connections`` connections at once from 2 processes, single rows for ``seconds``."""
    context = mp.get_context("spawn")
    start_at = time.time() + 1.5
    pipes, processes = [], []
    for share in (connections // 2, connections - connections // 2):
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_storm_client,
            args=(port, sample_rows(1)[0].encode(), start_at, seconds, theirs),
        )
        process.start()
        mine.send(share)
        pipes.append(mine)
        processes.append(process)
    answered = resets = refused = 0
    for pipe in pipes:
        a, r, f = pipe.recv()
        answered, resets, refused = answered + a, resets + r, refused + f
    for process in processes:
        process.join(30)
    print(
        f"\n{connections} connections at once for {seconds:.0f} s: {answered} answers "
        f"({answered / seconds:.0f}/s), {resets} resets, {refused} refused (target: 0 and 0)"
    )


_MLFLOW_SAVE = textwrap.dedent(
    """
    import sys, joblib, mlflow.sklearn, skops.io
    pipeline = joblib.load(sys.argv[1] + "/model.joblib")["pipeline"]
    # mlflow saves sklearn with skops, which refuses types it does not know
    # (HistGradientBoosting's TreePredictor, numpy.nan_to_num) unless trusted
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    mlflow.sklearn.save_model(
        pipeline, sys.argv[2], pyfunc_predict_fn="predict_proba", skops_trusted_types=trusted
    )
    """
)


def ensure_mlflow_venv() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    check = [str(python), "-c", "import mlflow, sklearn, skops"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    import sklearn

    print(f"creating {MLFLOW_VENV} (mlflow + scikit-learn {sklearn.__version__}, ~1 GB) ...")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "mlflow", f"scikit-learn=={sklearn.__version__}", "joblib"], check=True)
    return python


def start_mlflow(
    stack: contextlib.ExitStack, model_dir: Path, workdir: Path, one_thread: bool
) -> Target:
    python = ensure_mlflow_venv()
    saved = workdir / f"mlflow-{model_dir.name}"
    if not (saved / "MLmodel").exists():
        shutil.rmtree(saved, ignore_errors=True)
        subprocess.run([str(python), "-c", _MLFLOW_SAVE, str(model_dir), str(saved)], check=True)
    port = _free_port()
    # `mlflow models serve --env-manager local` runs uvicorn from PATH
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    if one_thread:  # what mlops.endpoint does per request (model_threads=1)
        env["OMP_NUM_THREADS"] = "1"
    command = [str(python.parent / "mlflow"), "models", "serve", "-m", str(saved)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = stack.enter_context((workdir / f"mlflow-serve-{port}.log").open("wb"))
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(_stop, process)
    _wait_ready(port, process, 180)
    # mlflow reads CSV with pandas: a header row names the columns
    body = (",".join(feature_names()) + "\n" + sample_rows(1)[0] + "\n").encode()
    name = "mlflow, OMP_NUM_THREADS=1" if one_thread else "mlflow (as it comes)"
    return Target(name, port, body, {"Content-Type": "text/csv"})


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per server")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per server")
    parser.add_argument("--clients", type=int, default=2, help="concurrent keep-alive clients")
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlops-bench-endpoint"))
    parser.add_argument("--mlflow", action="store_true", help="also measure mlflow models serve")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    model_dir = train_model(args.workdir, args.rows, args.seed)
    print(f"model: {model_dir} (ready in {time.perf_counter() - started:.1f} s)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before")

    with contextlib.ExitStack() as stack:
        targets = [start_endpoint(stack, model_dir)]
        if args.mlflow:
            targets += [start_mlflow(stack, model_dir, args.workdir, one) for one in (False, True)]
        print(
            f"\nsingle-row CSV, {args.clients} keep-alive clients, {args.seconds:.0f} s per "
            f"server in {args.rounds} interleaved rounds:"
        )
        for _ in range(args.rounds):
            for target in targets:
                latencies, errors = load_test(
                    target.port,
                    target.body,
                    target.headers,
                    args.clients,
                    args.seconds / args.rounds,
                )
                target.latencies += latencies
                target.errors += errors
                target.seconds += args.seconds / args.rounds
        for target in targets:
            print(target.line())
        big_s, big_bytes = big_request(targets[0].port)
        head_of_line(targets[0].port, args.clients, args.seconds)
        connection_storm(targets[0].port)
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"\n10,000 rows in one POST ({big_bytes / 1e6:.1f} MB): {big_s:.3f} s "
        f"({10_000 / big_s:,.0f} rows/s; best of 3)"
    )

    ours = targets[0].figures()
    timings, estimator = in_process_limits(model_dir, sample_rows(1)[0], seconds=4.0)
    bare, serving = timings["bare"], timings["serving"]
    print(f"\nin-process, one row, one OpenMP thread ({estimator} pipeline; best of 10 rounds):")
    print(f"  bare predict_proba             {bare * 1e3:6.3f} ms/call ({1 / bare:5.0f}/s)")
    print(f"  input_fn+predict_fn+output_fn  {serving * 1e3:6.3f} ms/call ({1 / serving:5.0f}/s)")
    print(f"  bare, default OpenMP threads   {timings['bare_default'] * 1e3:6.3f} ms/call")
    print(
        f"endpoint vs bare predict_proba: throughput {ours['rps']:.0f} vs {1 / bare:.0f}/s "
        f"= {1 / bare / ours['rps']:.2f}x below; p50 {ours['p50_ms'] / (bare * 1e3):.2f}x "
        f"the per-call time ({args.clients} requests share one GIL)"
    )
    for target in targets[1:]:
        theirs = target.figures()
        print(
            f"mlops.endpoint vs {target.name}: {ours['rps'] / theirs['rps']:.1f}x the "
            f"requests/s, p50 {theirs['p50_ms'] / ours['p50_ms']:.1f}x lower"
        )


if __name__ == "__main__":
    main()
