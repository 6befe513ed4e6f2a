"""`mlops rollout status|check`: the challenger on trial (mlops:rolloutMode shadow or ab)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops.cli.common import StackOpt, StateOpt, app, console, target_for
from mlops.cli.model import _print_outcome, _quiet_handlers
from mlops.target import DEFAULT_STATE_DIR

rollout_app = typer.Typer(help="A challenger on trial beside the champion: its numbers, verdict.")
app.add_typer(rollout_app, name="rollout")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _evidence_table(trial: dict[str, Any]) -> Table:
    evidence = trial["evidence"]
    table = Table(title=f"{trial['mode']} trial of {trial['job_name']} since {trial['started']}")
    for column in ("", "challenger", "champion"):
        table.add_column(column, justify="right" if column else "left")
    ours, theirs = evidence["champion"], evidence["challenger"]
    rows = [
        ("requests", "requests", 0),
        ("5XX rate", "error_rate", 4),
        ("mean model latency (ms)", "latency_ms", 2),
        (f"live {evidence['primary']}", "live", 4),
        ("labelled rows", "labelled", 0),
    ]
    for label, key, digits in rows:
        table.add_row(label, _fmt(theirs.get(key), digits), _fmt(ours.get(key), digits))
    if evidence["mode"] == "shadow":
        table.add_row("agreement", _fmt(evidence.get("agreement")), f"{evidence['paired']} paired")
    said = {True: "held", False: "TRIPPED", None: "not measured"}
    table.caption = f"needs {trial['min_requests']} challenger requests; " + "; ".join(
        f"{check['rule']}: {said[check['held']]}" for check in trial["checks"]
    )
    return table


@rollout_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """The rollout mode, the trial now (numbers and what the verdict would be), the last one."""
    from mlops import rollouts

    with _quiet_handlers():
        found = rollouts.status(target_for(stack, state_dir))
    if as_json:
        sys.stdout.write(json.dumps(found, default=str) + "\n")
        return
    console.print(f"rollout mode: {found['mode']}")
    trial = found["trial"]
    if trial is None:
        console.print("no challenger is on trial")
    else:
        console.print(_evidence_table(trial))
        console.print(f"verdict now: {trial['verdict']}: {trial['reason']}")
    last = found["last"]
    if last:
        numbers = ", ".join(f"{k}={v}" for k, v in sorted(last["numbers"].items()))
        console.print(
            f"last trial: v{last['version']} ({last['job_name']}) {last['verdict']}: "
            f"{last['reason']}" + (f" [{numbers}]" if numbers else "")
        )


@rollout_app.command("check")
def check(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Judge the trial now, as the schedule rule does: promote, withdraw, or wait."""
    from mlops import rollouts

    with _quiet_handlers():
        outcome = rollouts.check(target_for(stack, state_dir))
    outcome.pop("evidence", None)  # `mlops rollout status` shows it as a table
    _print_outcome(outcome)
