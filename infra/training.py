"""Training: the jobs code bundle in S3 and the EC2 training host's launch template."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.bundle import Bundle
from infra.naming import Names
from lambdas import constants as c
from lambdas.training import EC2_JOB_TTL_SECONDS, render_boot_script

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
    retrain_role: pulumi.Input[str]  # the retrain role's name: it may start a host
    retrain_role_arn: pulumi.Input[str]
    autoscaling_role_arn: pulumi.Input[str]  # the hosts' group's service-linked role
    availability_zones: pulumi.Input[list[str]]


class Training(pulumi.ComponentResource):
    """``s3://<artifacts>/code/jobs.tar.gz`` (SSE-KMS, re-uploaded when its hash changes),
    and the EC2 backend: a job queue, a hardened launch template (IMDSv2 only, encrypted
    EBS with the stack key, no public IP, a security group without ingress, terminate on
    shutdown) and an Auto Scaling group of 0 hosts that retrain scales to 1; the host
    takes its job from the queue and scales the group back to 0."""

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
        self.jobs_queue = aws.sqs.Queue(
            f"{name}-jobs",
            name=n.training_jobs_queue,
            kms_master_key_id=args.kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=EC2_JOB_TTL_SECONDS,  # a job not taken by then is stale
            receive_wait_time_seconds=20,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-jobs-policy",
            queue_url=self.jobs_queue.url,
            policy=pulumi.Output.all(args.retrain_role_arn, args.ec2_role_arn).apply(
                lambda a: json.dumps(policies.training_jobs_queue_policy(n, a[0], a[1]))
            ),
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
            user_data=self.jobs_queue.url.apply(
                lambda url: base64.b64encode(render_boot_script(n.region, url).encode()).decode()
            ),
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
        self.hosts = aws.autoscaling.Group(
            f"{name}-hosts",
            name=n.training_hosts,
            min_size=0,
            max_size=1,
            desired_capacity=0,
            launch_template={"id": self.launch_template.id, "version": "$Default"},
            availability_zones=args.availability_zones,
            service_linked_role_arn=args.autoscaling_role_arn,
            health_check_type="EC2",
            opts=pulumi.ResourceOptions(
                parent=self,
                # retrain and the host move the desired capacity: an update keeps theirs
                ignore_changes=["desiredCapacity"],
            ),
        )
        # The retrain function may queue a job and start a host: nothing else.
        self.start_host_policy = aws.iam.RolePolicy(
            f"{name}-retrain-start-host-policy",
            name=f"{n.prefix}-retrain-start-training-host",
            role=args.retrain_role,
            policy=json.dumps(policies.start_training_host_policy(n)),
            opts=child,
        )

        self.register_outputs(
            {
                "codeBundleUri": self.code_bundle_uri,
                "launchTemplateId": self.launch_template.id,
                "trainingHosts": self.hosts.name,
                "trainingJobsQueueUrl": self.jobs_queue.url,
                "securityGroupId": self.security_group.id,
            }
        )
