"""Nothing pretends: calls moto would only record are refused; role checks are evaluated.

STAND-INS for two moto behaviours a SageMaker client trips over:

- moto accepts ``CreateAutoMLJobV2``, ``CreateCompilationJob``,
  ``StartPipelineExecution`` and ``CreateCluster`` and reports them ``Completed`` (or
  InService) though nothing ran. Here they answer ``UnsupportedOperation`` naming the
  call ("not run by the local cloud"): a job that did not run never looks done.
- ``iam:SimulatePrincipalPolicy`` (the v3 SDK validates its role with it) is not in
  moto. Here it evaluates the principal's inline and attached policies with moto's own
  policy engine: ``allowed``, ``explicitDeny`` or ``implicitDeny`` per action and
  resource, as IAM answers.
"""

from __future__ import annotations

from typing import Any

NOT_RUN = {
    "create_auto_ml_job_v2": "CreateAutoMLJobV2",
    "create_compilation_job": "CreateCompilationJob",
    "start_pipeline_execution": "StartPipelineExecution",
    "create_cluster": "CreateCluster",
}


def install(patcher: Any) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.iam.responses import IamResponse
    from moto.sagemaker.responses import SageMakerResponse

    for method, call in NOT_RUN.items():

        def refuse(self: Any, _call: str = call) -> Any:
            raise JsonRESTError(
                "UnsupportedOperation",
                f"{_call} is not run by the local cloud: moto would record it and report "
                "it done without running anything (docs/local-cloud.md lists what runs)",
            )

        patcher.set(SageMakerResponse, method, refuse)
    patcher.set(IamResponse, "simulate_principal_policy", _simulate_principal_policy)


def decisions(policies: list[Any], actions: list[str], resources: list[str]) -> list[dict]:
    """IAM's ``EvaluationResults`` for ``actions`` x ``resources`` under ``policies``."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    engines = [IAMPolicy(policy) for policy in policies]
    results = []
    for action in actions:
        for resource in resources:
            outcomes = [engine.is_action_permitted(action, resource) for engine in engines]
            if PermissionResult.DENIED in outcomes:
                decision = "explicitDeny"
            elif PermissionResult.PERMITTED in outcomes:
                decision = "allowed"
            else:
                decision = "implicitDeny"
            results.append(
                {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision}
            )
    return results


def _simulate_principal_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.iam.exceptions import NotFoundException

    arn = str(self._get_param("PolicySourceArn") or "")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    kind, _, name = arn.partition(":")[2].rpartition(":")[2].partition("/")
    name = name.rpartition("/")[2]
    if kind == "role":
        principal = self.backend.get_role(name)
    elif kind == "user":
        principal = self.backend.get_user(name)
    else:
        raise NotFoundException(f"PolicySourceArn {arn!r} is not a role or user ARN")
    policies: list[Any] = list(principal.policies.values())
    policies += list(principal.managed_policies.values())
    return ActionResult(
        {"EvaluationResults": decisions(policies, actions, resources), "IsTruncated": False}
    )
