#!/bin/bash
# mlops training host (launch template user data, the same for every job): takes one job
# from the stack's job queue, runs it, then scales its Auto Scaling group back to zero.
# The control plane starts a host by setting the group's desired capacity to 1 after
# queueing the job: it never launches instances or passes roles itself.
set -uo pipefail
exec > >(tee -a /var/log/mlops-boot.log) 2>&1
REGION=@@REGION@@
QUEUE=@@QUEUE@@
export AWS_DEFAULT_REGION="$REGION"
IMDS=http://169.254.169.254/latest

TOKEN=$(curl -sS -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/instance-id")

scale_in() {
  # one host per job: leave the group at 0 (an instance that only shut down would be
  # replaced); if that fails, shut down: the replacement finds the queue empty and retries
  aws autoscaling terminate-instance-in-auto-scaling-group --instance-id "$INSTANCE" \
    --should-decrement-desired-capacity || shutdown -h now
}
trap scale_in EXIT

# Take the oldest job that has not expired; delete it at once: a job runs at most once
# (a host that dies mid-job leaves no job behind for its replacement to start again).
while true; do
  aws sqs receive-message --queue-url "$QUEUE" --max-number-of-messages 1 \
    --wait-time-seconds 20 --output json > /tmp/message.json || exit 1
  # (AWS CLI v2 prints nothing when the queue is empty)
  RECEIPT=$(python3 -c '
import json
text = open("/tmp/message.json").read().strip()
messages = json.loads(text).get("Messages", []) if text else []
print(messages[0]["ReceiptHandle"] if messages else "")') || exit 1
  [ -n "$RECEIPT" ] || exit 0  # nothing queued: scale in
  aws sqs delete-message --queue-url "$QUEUE" --receipt-handle "$RECEIPT" || exit 1
  python3 -c '
import json, sys, time
body = json.loads(json.load(open("/tmp/message.json"))["Messages"][0]["Body"])
if body["expires"] < time.time():
    print("skipping expired job", body["job"])
    sys.exit(3)
open("/opt/mlops-job.sh", "w").write(body["script"])'
  case $? in
    0) break ;;
    3) continue ;;
    *) exit 1 ;;
  esac
done
bash /opt/mlops-job.sh
