"""Training: the jobs code bundle in S3 and the EC2 training host's launch template."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.bundle import Bundle
from infra.naming import Names
from lambdas import constants as c

ROOT_VOLUME_GB = 30


@dataclass
class TrainingArgs:
    names: Names
    kms_key_arn: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    bundle: Bundle
    ami_id: pulumi.Input[str]
    ec2_instance_type: str
    instance_profile_arn: pulumi.Input[str]
    ec2_role_arn: pulumi.Input[str]
    retrain_role: pulumi.Input[str]  # the retrain role's name: it may launch from the template


class Training(pulumi.ComponentResource):
    """``s3://<artifacts>/code/jobs.tar.gz`` (SSE-KMS, re-uploaded when its hash changes),
    and a hardened launch template for the EC2 backend: IMDSv2 only, encrypted EBS with
    the stack key, no public IP, a security group without ingress, terminate on shutdown."""

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:training:Training", name, None, opts)
        n = args.names
        child = pulumi.ResourceOptions(parent=self)

        self.code_bundle = aws.s3.BucketObjectv2(
            f"{name}-code-bundle",
            bucket=args.artifacts_bucket,
            key=c.CODE_BUNDLE_KEY,
            source=pulumi.FileAsset(str(args.bundle.path)),
            source_hash=args.bundle.sha256,
            content_type="application/gzip",
            server_side_encryption="aws:kms",
            kms_key_id=args.kms_key_arn,
            bucket_key_enabled=True,
            opts=child,
        )
        self.code_bundle_uri = n.code_bundle_uri

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-host-sg",
            name=f"{n.prefix}-training-host",
            description="EC2 training host: no ingress; HTTPS out to S3, ECR and CloudWatch",
            egress=[
                {
                    "description": "HTTPS to AWS APIs",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
            revoke_rules_on_delete=True,
            opts=child,
        )
        tags = {"mlops:stack": n.stack, "mlops:model": n.model, "mlops:role": "training-host"}
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-host-template",
            name=n.launch_template,
            description=f"{n.prefix}: EC2 training host (runs jobs.train, then terminates)",
            image_id=args.ami_id,
            instance_type=args.ec2_instance_type,
            iam_instance_profile={"arn": args.instance_profile_arn},
            instance_initiated_shutdown_behavior="terminate",
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",  # IMDSv2 only
                # 2 hops: a training container on the host reaches IMDS through docker's bridge.
                "http_put_response_hop_limit": 2,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": ROOT_VOLUME_GB,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "kms_key_id": args.kms_key_arn,
                        "delete_on_termination": "true",
                    },
                }
            ],
            network_interfaces=[
                {
                    "device_index": 0,
                    "associate_public_ip_address": "false",
                    "delete_on_termination": "true",
                    "security_groups": [self.security_group.id],
                }
            ],
            monitoring={"enabled": True},
            tag_specifications=[
                {"resource_type": "instance", "tags": tags},
                {"resource_type": "volume", "tags": tags},
            ],
            update_default_version=True,
            opts=child,
        )
        # The retrain function may launch the host from this template only.
        self.launch_policy = aws.iam.RolePolicy(
            f"{name}-retrain-launch-policy",
            name=f"{n.prefix}-retrain-launch-training-host",
            role=args.retrain_role,
            policy=pulumi.Output.all(
                self.launch_template.arn, args.ec2_role_arn, args.kms_key_arn
            ).apply(
                lambda a: json.dumps(
                    policies.launch_training_host_policy(
                        n, launch_template_arn=a[0], ec2_role_arn=a[1], kms_key_arn=a[2]
                    )
                )
            ),
            opts=child,
        )

        self.register_outputs(
            {
                "codeBundleUri": self.code_bundle_uri,
                "launchTemplateId": self.launch_template.id,
                "securityGroupId": self.security_group.id,
            }
        )
