"""What every `mlops` command shares: the typer apps, consoles, options and errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from infra.errors import InfraError
from mlops.errors import MlopsError
from mlops.target import connect

app = typer.Typer(
    help="One model's MLOps stack on AWS: preview, deploy, train, promote, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(help="The local cloud: a moto server plus what moto lacks.")
app.add_typer(local_app, name="local")

# what a command reports as "error: <message>" rather than a traceback: each package's base
USER_ERRORS = (MlopsError, InfraError)

console = Console()
err = Console(stderr=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
StackOpt = Annotated[str, typer.Option("--stack", "-s", help="Stack config: Pulumi.<stack>.yaml")]
StateOpt = Annotated[Path, typer.Option("--state-dir", help="Where local state lives")]


def local_time(when: Any) -> str:
    """A time as the user reads it: their local zone, named (a naive time is UTC)."""
    if not isinstance(when, datetime):
        return "-" if when is None else str(when)
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@contextmanager
def waiting(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner saying what a command waits for and for how long (rich progress, on
    stderr so stdout stays the command's answer); yields ``update(what)``."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"waiting for {what}")

        def update(now: str) -> None:
            progress.update(task, description=f"waiting for {now}")

        yield update


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error; the caller raises the returned exit."""
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def target_for(stack: str, state_dir: Path) -> Any:
    """The stack's target (local deploy or AWS), or exit with the reason there is none."""
    try:
        return connect(stack, state_dir)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
