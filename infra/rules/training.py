"""Rules for the EC2 training host: a hardened launch template, no inbound traffic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.rules.props import as_list, is_false, is_set, is_true, lookup
from infra.rules.registry import RuleSet
from infra.rules.resource_types import (
    INGRESS_RULE,
    LAUNCH_TEMPLATE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
)

RULES = RuleSet()


@RULES.resource(
    "ec2-launch-template-hardened",
    "Launch templates require IMDSv2, encrypt EBS with a customer key, assign no public IP",
    {LAUNCH_TEMPLATE},
)
def launch_template_hardened(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """IMDSv2 required, every EBS volume encrypted with a customer key, no public IP."""
    problems = []
    if lookup(props, "metadataOptions", "httpTokens") != "required":
        problems.append("metadataOptions.httpTokens is not 'required' (IMDSv2)")
    mappings = as_list(props.get("blockDeviceMappings"))
    if not mappings:
        problems.append("no block device mapping: the root volume's encryption is not set")
    for mapping in mappings:
        device = lookup(mapping, "deviceName")
        if not is_true(lookup(mapping, "ebs", "encrypted")):
            problems.append(f"EBS volume {device} is not encrypted")
        elif not is_set(lookup(mapping, "ebs", "kmsKeyId")):
            problems.append(f"EBS volume {device} is not encrypted with the stack key")
    interfaces = as_list(props.get("networkInterfaces"))
    if not interfaces:
        problems.append("no network interface with associatePublicIpAddress 'false'")
    for interface in interfaces:
        if not is_false(lookup(interface, "associatePublicIpAddress")):
            problems.append("a network interface may get a public IP address")
    return problems


@RULES.resource(
    "ec2-security-group-no-ingress",
    "Security groups allow no inbound traffic",
    {SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE},
)
def no_ingress(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Security groups allow no inbound traffic."""
    if resource_type == SECURITY_GROUP:
        ingress = as_list(props.get("ingress"))
        return [f"{len(ingress)} inline ingress rule(s)"] if ingress else []
    if resource_type == SECURITY_GROUP_RULE and props.get("type") != "ingress":
        return []
    return ["an ingress rule"]
