"""The `mlops` command: preview, the local cloud, deploys and the model's life.

`app` is the console script (`mlops = "mlops.cli:app"`); importing the command
modules registers their commands on it.
"""

# isort: off
# the import order is the order `mlops --help` lists the commands in
from mlops.cli.common import app
from mlops.cli import stack, data, model, rollout, card, approve, serving, local

# isort: on

__all__ = ["app", "approve", "card", "data", "local", "model", "rollout", "serving", "stack"]
