"""The local endpoint serving a real model.

Trained by ``jobs.train`` on synthetic data, served by ``jobs.inference``.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from jobs import train
from mlops import endpoint
from mlops.endpoint import CaptureWriter, EndpointServer, LocalModel, make_server
from mlops.endpoint.__main__ import main

FEATURES = ["x0", "x1", "x2", "x3", "color"]
ROW = "0.5,-1.25,2.0,0.0,red"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(7)
    n = 2000
    x = rng.normal(size=(n, 4)).round(4)
    color = rng.choice(["red", "green", "blue"], n)
    score = x[:, 0] + x[:, 1] + (color == "red") + rng.normal(scale=0.5, size=n)
    label = np.where(score > 0.5, "yes", "no")
    lines = [",".join([*FEATURES, "label"])]
    lines += [",".join([*map(str, row), c, y]) for row, c, y in zip(x, color, label, strict=True)]
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("\n".join(lines) + "\n")
    code = train.main(
        [
            "--train", str(root / "data"),
            "--model-dir", str(root / "model"),
            "--output-data-dir", str(root / "out"),
            "--output-dir", str(root / "failure"),
            "--categorical", "color",
            "--max-iter", "20",
        ]
    )  # fmt: skip
    assert code == 0, (root / "failure" / "failure").read_text()
    return root / "model"


@pytest.fixture(scope="module")
def model(model_dir: Path) -> LocalModel:
    return LocalModel.from_dir(model_dir)


@pytest.fixture(scope="module")
def server(model: LocalModel) -> Iterator[EndpointServer]:
    srv = make_server(model, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _post(
    srv: EndpointServer, body: str | bytes, content_type: str, accept: str | None = None
) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=30)
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    conn.request("POST", "/invocations", body, headers)
    response = conn.getresponse()
    result = response.status, response.getheader("Content-Type", ""), response.read().decode()
    conn.close()
    return result


def _check_csv_answer(answer: str, rows: int) -> None:
    lines = answer.splitlines()
    assert len(lines) == rows
    for line in lines:
        label, *probabilities = line.split(",")
        assert label in ("yes", "no")
        assert sum(map(float, probabilities)) == pytest.approx(1.0)


def _check_json_answer(answer: str, rows: int) -> None:
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == rows
    for prediction in predictions:
        assert prediction["label"] in ("yes", "no")
        assert set(prediction["probabilities"]) == {"no", "yes"}
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_model_identity(model: LocalModel, model_dir: Path) -> None:
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    assert model.features == FEATURES
    assert model.model_sha256 == evaluation["model"]["sha256"]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "rows"),
    [
        (ROW, "text/csv", None, 1),
        (f"{ROW}\n{ROW}\n0,0,0,0,blue\n", "text/csv", None, 3),
        (f"{','.join(FEATURES)}\n{ROW}\n", "text/csv", None, 1),
        (ROW, "text/csv", "application/json", 1),
        ('{"instances": [[0.5, -1.25, 2.0, 0.0, "red"]]}', "application/json", None, 1),
        ('{"instances": [[0.5, 1, 2, 0, "red"], [0, 0, 0, 0, "x"]]}', "application/json", None, 2),
        (
            '{"instances": [{"x0": 1, "x1": 2, "x2": 3, "x3": 4, "color": "blue"}]}',
            "application/json",
            "text/csv",
            1,
        ),
        ('{"x0": 1, "x1": 2, "x2": 3, "x3": 4, "color": "blue"}', "application/json", None, 1),
        ('[0.5, -1.25, 2.0, 0.0, "red"]', "application/json", "*/*", 1),
    ],
)
def test_round_trips(
    server: EndpointServer, body: str, content_type: str, accept: str | None, rows: int
) -> None:
    status, answer_type, answer = _post(server, body, content_type, accept)
    assert status == 200, answer
    expected_type = accept if accept in ("text/csv", "application/json") else content_type
    assert answer_type == expected_type
    if answer_type == "text/csv":
        _check_csv_answer(answer, rows)
    else:
        _check_json_answer(answer, rows)


def test_many_rows(server: EndpointServer) -> None:
    body = "".join(
        f"{i % 7},{-i % 3},{i / 1000},1.5,{'red' if i % 2 else 'blue'}\n" for i in range(2000)
    )
    status, _, answer = _post(server, body, "text/csv")
    assert status == 200
    _check_csv_answer(answer, 2000)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"1,2,3", "text/csv", "the model expects 5 features"),
        (b"a,b,c,d,red", "text/csv", "is not a number"),
        (b'{"instances": [{"x0": 1}]}', "application/json", "lacks feature(s): x1, x2, x3, color"),
        (b"{oops", "application/json", "not valid JSON"),
        (b"\xff,1,2,3,red", "text/csv", "not UTF-8"),
        # nested 100,000 deep: a 400 with the reason, not a 500 RecursionError
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nests JSON too deep"),
    ],
)
def test_bad_input_is_400_with_the_reason(
    server: EndpointServer, body: bytes, content_type: str, message: str
) -> None:
    status, answer_type, answer = _post(server, body, content_type)
    assert (status, answer_type) == (400, "text/plain; charset=utf-8")
    assert message in answer
    assert _post(server, ROW, "text/csv")[0] == 200


def _tarball(model_dir: Path, subfolder: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=f"{subfolder}{path.name}")
    return buffer.getvalue()


@pytest.mark.parametrize("subfolder", ["", "model/"])
def test_load_from_model_tar_gz(model_dir: Path, tmp_path: Path, subfolder: str) -> None:
    data = _tarball(model_dir, subfolder)
    (tmp_path / "model.tar.gz").write_bytes(data)
    from_path = LocalModel.from_tarball(tmp_path / "model.tar.gz", tmp_path / "a")
    from_bytes = LocalModel.from_tarball(data, tmp_path / "b")
    for loaded in (from_path, from_bytes):
        assert loaded.features == FEATURES
        body, content_type = loaded.invoke(ROW.encode(), "text/csv", None)
        assert content_type == "text/csv"
        _check_csv_answer(body.decode(), 1)


def test_tarball_with_escaping_paths_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(tarfile.OutsideDestinationError):
        LocalModel.from_tarball(buffer.getvalue(), tmp_path / "x")
    assert not (tmp_path / "evil.txt").exists()


def test_serve_runs_a_tarball_with_capture_and_stops_cleanly(
    model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.tar.gz").write_bytes(_tarball(model_dir))
    capture = CaptureWriter(endpoint_name="ep", directory=tmp_path / "capture")
    ready = threading.Event()
    servers: list[EndpointServer] = []

    def on_ready(srv: EndpointServer) -> None:
        servers.append(srv)
        ready.set()

    thread = threading.Thread(
        target=endpoint.serve,
        args=(tmp_path / "model.tar.gz", "127.0.0.1", 0, capture),
        kwargs={"on_ready": on_ready},
    )
    thread.start()
    assert ready.wait(30)
    [srv] = servers
    assert _post(srv, ROW, "text/csv")[0] == 200
    srv.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    [capture_file] = (tmp_path / "capture").rglob("*.jsonl")  # close() flushed it
    record = json.loads(capture_file.read_text())
    assert record["captureData"]["endpointInput"]["data"] == ROW


def test_main_reports_port_in_use(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([str(model_dir), "--port", str(port)]) == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_main_reports_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nothing")]) == 1
    assert "error: no model folder or model.tar.gz at" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_server_stops_on_sigterm_and_flushes_capture(
    model_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mlops.endpoint", str(model_dir), "--port", "0"]
    command += ["--capture-dir", str(tmp_path), "--endpoint-name", "ep"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "on http://127.0.0.1:" in line, line
        port = int(line.split("on http://127.0.0.1:")[1].split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/ping")
        ping = conn.getresponse()
        assert ping.status == 200
        ping.read()
        conn.request("POST", "/invocations", ROW, {"Content-Type": "text/csv"})
        response: Any = conn.getresponse()
        assert response.status == 200
        response.read()
        conn.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert len(list((tmp_path / "ep" / "AllTraffic").rglob("*.jsonl"))) == 1


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_command_line_server_leaves_no_worker_processes(model_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mlops.endpoint", str(model_dir), "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = int(line.split("on http://127.0.0.1:")[1].split()[0])
        big = (ROW + "\n").encode() * 2000  # over offload_bytes: answered by a worker
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/invocations", big, {"Content-Type": "text/csv"})
        response = conn.getresponse()
        assert response.status == 200 and response.read().count(b"\n") == 2000
        conn.close()
        workers = _children(process.pid)
        assert workers, "a large request was answered without worker processes"
    finally:
        process.kill()  # SIGKILL: no cleanup of any kind runs in the server
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    from localcloud_helpers import alive, wait_for

    wait_for(lambda: not any(alive(w) for w in workers), timeout=15)  # else: orphans


def _openmp_threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return int(_openmp_effective_n_threads())


@pytest.mark.parametrize("model_threads", [1, None])
def test_model_threads_caps_openmp_in_the_serving_thread(
    model_dir: Path, model_threads: int | None
) -> None:
    from jobs import inference

    seen: list[int] = []

    def predict_fn(data: Any, model: Any) -> Any:
        seen.append(_openmp_threads())
        return inference.predict_fn(data, model)

    serving: Any = SimpleNamespace(**{**vars(inference), "predict_fn": predict_fn})
    before = _openmp_threads()
    srv = make_server(LocalModel.from_dir(model_dir, serving), port=0, model_threads=model_threads)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        assert _post(srv, ROW, "text/csv")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
    assert seen == [1 if model_threads else before]
    assert _openmp_threads() == before  # the setting is per thread: this one is untouched
