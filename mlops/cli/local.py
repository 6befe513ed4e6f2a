"""`mlops local ...`: start, stop, inspect and drive the local cloud; and `mlops demo`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlops.cli.common import (
    REPO_ROOT,
    USER_ERRORS,
    StateOpt,
    app,
    console,
    fail,
    local_app,
    waiting,
)
from mlops.target import DEFAULT_STATE_DIR

POLL_SECONDS = 1.0  # how often `local wait` says what it is waiting for


@local_app.command("start")
def local_start(
    port: Annotated[
        int, typer.Option(help="Port of the moto server", envvar="MLOPS_LOCAL_PORT")
    ] = 5000,
    tick: Annotated[float | None, typer.Option(help="Fire schedules every N seconds")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start empty: forget the last run's state")
    ] = False,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Start a moto server plus job runner, event router and endpoints, in the background.

    It restores what the last run held (kept in STATE_DIR/snapshot on every change and
    at stop) unless --fresh."""
    from mlops import localcloud
    from mlops.localcloud import client

    if fresh and localcloud.status(state_dir) is not None:
        raise fail("a local cloud is running: `mlops local reset` empties it")
    if fresh:
        _forget(state_dir)
    try:
        with console.status(f"starting the local cloud on 127.0.0.1:{port}…"):
            info = localcloud.start(state_dir, port=port, tick=tick, repo_root=REPO_ROOT)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"local cloud running at [bold]{info.endpoint_url}[/] (pid {info.pid})")
    restored = client.status(info).get("restored")
    if restored:
        console.print(
            f"  restored the last run's state (saved {restored['saved_at']}): "
            f"{', '.join(restored['services'])}"
        )
        for job in restored.get("interrupted_jobs") or []:
            console.print(f"  [yellow]training job {job} was running at stop: now Failed[/]")
    else:
        console.print("  starting empty" + (" (--fresh)" if fresh else " (no saved state)"))
    console.print(f"  boto3: AWS_ENDPOINT_URL={info.endpoint_url}; aws --endpoint-url ...")


def _forget(state_dir: Path) -> list[str]:
    """Delete the saved cloud and the stacks deployed into it; what was deleted."""
    from mlops.localcloud import snapshot

    gone = [str(snapshot.snapshot_path(state_dir))] if snapshot.remove(state_dir) else []
    for stale in (state_dir / "stacks").glob("*.json"):
        stale.unlink()
        gone.append(str(stale))
    return gone


@local_app.command("stop")
def local_stop(state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Stop the background local cloud; its state is saved for the next start."""
    from mlops import localcloud

    if localcloud.stop(state_dir):
        console.print("local cloud stopped; `mlops local start` restores it (--fresh: empty)")
    else:
        console.print("no local cloud was running")


@local_app.command("reset")
def local_reset(state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Forget everything the local cloud holds (a running one restarts empty)."""
    from mlops import localcloud

    info = localcloud.status(state_dir)
    if info is not None:
        localcloud.stop(state_dir)
    gone = _forget(state_dir)
    if info is not None:
        try:
            localcloud.start(state_dir, port=info.port, repo_root=REPO_ROOT)
        except USER_ERRORS as exc:
            raise fail(str(exc)) from None
    what = f"deleted {len(gone)} saved file(s)" if gone else "nothing was saved"
    again = f"; running again, empty, at {info.endpoint_url}" if info is not None else ""
    console.print(f"local cloud reset: {what}{again}")


@local_app.command("status")
def local_status(state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Is the local cloud running, and what has it delivered?"""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        console.print("no local cloud running (start one with `mlops local start`)")
        raise typer.Exit(1)
    state = client.status(info)
    table = Table(title=f"local cloud {info.endpoint_url}")
    table.add_column("key")
    table.add_column("value")
    for key, value in state.items():
        table.add_row(key, str(value))
    console.print(table)


@local_app.command("fire")
def local_fire(rule: str, state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Fire a schedule rule now (schedules do not tick unless started with --tick)."""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        raise fail("no local cloud running: `mlops local start`")
    console.print(f"{client.fire_schedule(info, rule)} deliveries queued")


@local_app.command("wait")
def local_wait(
    timeout: Annotated[float, typer.Option(help="Seconds")] = 300,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Wait until no job runs and no event is pending."""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        raise fail("no local cloud running: `mlops local start`")
    started = time.monotonic()
    with waiting("the local cloud to be idle") as update:
        while True:
            busy = client.status(info).get("busy") or {}
            if busy:
                update(", ".join(f"{n} {kind}" for kind, n in sorted(busy.items())))
            left = timeout - (time.monotonic() - started)
            if client.wait_idle(info, max(0.0, min(POLL_SECONDS, left))):
                break
            if left <= 0:
                raise fail(f"still busy after {timeout:.0f}s: {busy}")
    elapsed = time.monotonic() - started
    console.print(f"idle after {elapsed:.0f}s; next: `mlops status` (jobs, champion, endpoint)")


@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Transactions per day")] = 5_000,
    seed: Annotated[int, typer.Option(help="Data seed")] = 7,
) -> None:
    """The whole loop offline: deploy, ingest, train, promote, serve, drift, retrain, gate."""
    from mlops import demo as demo_module

    console.print("[bold]mlops demo[/]: the whole loop in a local cloud of its own\n")
    try:
        result = demo_module.run(REPO_ROOT, rows=rows, seed=seed, console=console)
    except KeyboardInterrupt:
        raise fail("interrupted; everything the demo started has been stopped", 130) from None
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    demo_module.print_summary(result, console)
    console.print(
        "next: the same loop step by step, in a cloud you keep: `mlops local start`, "
        "`mlops up --local`, `mlops sample` (README, 'Working with the local cloud')"
    )
