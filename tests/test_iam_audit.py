"""An outside IAM linter over every policy document the program writes: parliament.

Parliament (duo-labs, with its community auditors: privilege escalation, permissions
management, credentials exposure) runs as a library over each role policy, trust
policy, key policy and bucket/queue/topic policy of the dev and prod stacks. No finding
may be HIGH; every MEDIUM/LOW finding must be in ``policy/parliament-allowlist.yaml``
with its reason, and every entry there must still match a finding (a fixed finding
leaves no stale excuse behind).

Two readings parliament cannot make are adjusted here, each named:

- a trust policy has no ``Resource`` by its grammar; parliament reads every document as
  an identity or resource policy, reports "neither Resource nor NotResource" (MALFORMED)
  and checks nothing else. A trust policy is the role's resource policy, so each of its
  statements is audited with the role's own ARN as its ``Resource``.
- parliament's JSON reader crashes on a number (``NumericLessThan`` 1.2 for
  ``s3:TlsVersion``, as AWS's examples write it): numbers are passed as text, which its
  integer-only Number pattern then reports as a type mismatch (allowlisted).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parliament
import pytest
import yaml
from infra_helpers import REPO_ROOT, program
from parliament import analyze_policy_string, enhance_finding

ALLOWLIST = REPO_ROOT / "policy" / "parliament-allowlist.yaml"

#: The resource types whose inputs hold a policy document, and which input.
DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:kms/key:Key": "policy",
}

# the community auditors' issues (severities) join parliament's config, as its CLI does
parliament.override_config(
    Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
)


@dataclass(frozen=True, order=True)
class Finding:
    document: str  # the resource's logical name
    sid: str  # the statement's Sid ("" for a finding about the whole document)
    issue: str
    severity: str

    def __str__(self) -> str:
        return f"{self.severity} {self.issue} in {self.document}/{self.sid or '*'}"


def _numbers_as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _numbers_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_text(v) for v in value]
    return value


def audit(name: str, doc: dict[str, Any], *, role_arn: str | None = None) -> list[Finding]:
    """Parliament's findings over one document, each placed on its statement.

    ``role_arn``: the document is that role's trust policy."""
    doc = _numbers_as_text(doc)
    if role_arn is not None:
        doc = {**doc, "Statement": [{**s, "Resource": role_arn} for s in doc["Statement"]]}
    text = json.dumps(doc)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    spans = []
    for s in statements:
        start = text.index(json.dumps(s))
        spans.append((start, start + len(json.dumps(s)), str(s.get("Sid", ""))))
    policy = analyze_policy_string(text, include_community_auditors=True)
    found = []
    for raw in policy.findings:
        f = enhance_finding(raw)
        location = f.location if isinstance(f.location, dict) else {}
        sid = ""
        if "column" in location:
            offset = int(location["column"]) - 1
            sid = next((sid for a, b, sid in spans if a <= offset < b), "")
        elif "actions" in location:  # a combination: name the statements granting them
            acts = set(location["actions"])
            sid = ",".join(
                sorted(
                    str(s.get("Sid", ""))
                    for s in statements
                    if acts & {a.lower() for a in _as_list(s.get("Action"))}
                )
            )
        found.append(Finding(name, sid, f.issue, f.severity))
    return sorted(set(found))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


#: The configurations audited: each stack file, and prod with a shadow rollout (the
#: promote role then also reads the trial's captures, labels and variant metrics).
STACKS: dict[str, tuple[str, dict[str, str]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "prod+shadow": ("prod", {"rolloutMode": "shadow"}),
}


@functools.cache
def stack_findings(stack: str) -> tuple[Finding, ...]:
    found: list[Finding] = []
    name, overrides = STACKS[stack]
    for resource in program(name, **overrides):
        prop = DOCUMENTS.get(resource.type)
        raw = resource.inputs.get(prop) if prop else None
        if raw is None:
            continue
        doc = json.loads(raw) if isinstance(raw, str) else dict(raw)
        role_arn = resource.outputs["arn"] if prop == "assumeRolePolicy" else None
        found += audit(resource.name, doc, role_arn=role_arn)
    return tuple(sorted(set(found)))


def allowlist() -> dict[tuple[str, str, str], str]:
    entries = yaml.safe_load(ALLOWLIST.read_text())
    out = {}
    for e in entries:
        assert e.get("reason"), f"{ALLOWLIST.name}: {e} has no reason"
        out[(e["document"], e["sid"], e["issue"])] = e["reason"]
    return out


@pytest.mark.parametrize("stack", list(STACKS))
def test_no_high_finding(stack: str) -> None:
    high = [str(f) for f in stack_findings(stack) if f.severity in {"HIGH", "CRITICAL"}]
    assert high == [], "\n".join(high)


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_other_finding_is_allowlisted_with_its_reason(stack: str) -> None:
    allowed = allowlist()
    unexplained = [
        str(f) for f in stack_findings(stack) if (f.document, f.sid, f.issue) not in allowed
    ]
    assert unexplained == [], f"add to {ALLOWLIST.name} with a reason, or fix:\n" + "\n".join(
        unexplained
    )


def test_no_stale_allowlist_entry() -> None:
    seen = {(f.document, f.sid, f.issue) for s in STACKS for f in stack_findings(s)}
    stale = sorted(set(allowlist()) - seen)
    assert stale == [], f"{ALLOWLIST.name}: no finding any more for {stale}"


def test_the_audit_finds_the_escalation_path_it_guards_against() -> None:
    # the retrain launch policy this stack used to have: PassRole + RunInstances
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Launch",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances"],
                "Resource": "arn:aws:ec2:us-east-1:123456789012:instance/*",
            },
            {
                "Sid": "Pass",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": "arn:aws:iam::123456789012:role/host",
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
        ],
    }
    [escalation] = [f for f in audit("bad", bad) if f.issue == "PRIVILEGE_ESCALATION"]
    assert escalation.severity == "HIGH" and escalation.sid == "Launch,Pass"


def test_a_trust_policy_is_still_audited_for_everything_but_its_missing_resource() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrustService",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRoel",  # a typo parliament must still catch
            }
        ],
    }
    role = "arn:aws:iam::123456789012:role/r"
    assert [f.issue for f in audit("role", trust, role_arn=role)] == ["UNKNOWN_ACTION"]
    # and read as an identity policy, the same document is malformed (no Resource)
    assert "MALFORMED" in {f.issue for f in audit("role", trust)}
