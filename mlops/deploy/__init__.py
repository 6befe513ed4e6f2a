"""Deploy the real Pulumi program into a moto server, without the Pulumi CLI.

The program is evaluated under Pulumi's mock runtime; `mocks.DeployingMocks`
creates each resource in the moto server through boto3 (one handler per resource
type, in `resources/<service>.py`) and returns the outputs the real provider would.
A small state file (`state.py`, `.mlops/stacks/<stack>.json`) maps each logical
resource to its physical id, so a re-run updates in place instead of duplicating, a
deploy that failed halfway converges on the next run, and `mlops down` deletes in
reverse order.

This is a stand-in for `pulumi up` on a machine with no Pulumi CLI; where the
CLI exists, `pulumi up -s local` deploys the same program into the same server.
"""

from mlops.deploy.errors import DeployError
from mlops.deploy.stack import DeployResult, deploy, destroy, stack_outputs
from mlops.deploy.state import state_path

__all__ = [
    "DeployError",
    "DeployResult",
    "deploy",
    "destroy",
    "stack_outputs",
    "state_path",
]
