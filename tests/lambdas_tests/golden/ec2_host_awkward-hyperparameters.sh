#!/bin/bash
# mlops training job churn-20240502-000000-fedcba98 (queued by retrain, run by the host's boot script): runs the
# SageMaker training contract once, uploads the same artifacts a SageMaker job would and
# reports the outcome; the boot script then scales the host in.
set -uo pipefail
exec > >(tee -a /var/log/mlops-training.log) 2>&1
JOB=churn-20240502-000000-fedcba98
REGION=eu-west-1
export AWS_DEFAULT_REGION="$REGION"
OUT=s3://art/training/churn-20240502-000000-fedcba98/output
LINEAGE=s3://art/lineage/churn-20240502-000000-fedcba98.json
CODE=s3://art/code/jobs.tar.gz
CHAMPION=''
REFERENCE=''
KMS=''
MAX_SECONDS=3600
VENV=/opt/mlops/venv
STATUS=Failed
REASON="training host did not finish"
# dead man's switch: the host goes away even if this script hangs (its replacement finds
# the queue empty and scales the group in)
shutdown -h +$(( MAX_SECONDS / 60 + 30 )) || true

# The S3 upload flags for the stack key: no word, or four words that callers split
# (unquoted $(sse)); a KMS key ARN has no blanks or glob characters.
sse() { if [ -n "$KMS" ]; then echo --sse aws:kms --sse-kms-key-id "$KMS"; fi; }

finish() {
  set +e
  if [ "$STATUS" != Completed ]; then
    mkdir -p /opt/ml/output
    [ -s /opt/ml/output/failure ] || echo "$REASON" > /opt/ml/output/failure
    REASON=$(head -c 1000 /opt/ml/output/failure)
    # shellcheck disable=SC2046 # $(sse) is split into its words on purpose
    aws s3 cp /opt/ml/output/failure "$OUT/failure" $(sse)
  fi
  # shellcheck disable=SC2046 # $(sse) is split into its words on purpose
  aws s3 cp /var/log/mlops-training.log "$OUT/host.log" $(sse)
  DETAIL=$(STATUS="$STATUS" REASON="$REASON" JOB="$JOB" OUT="$OUT" python3 -c '
import json, os
d = {"TrainingJobName": os.environ["JOB"], "TrainingJobStatus": os.environ["STATUS"],
     "ModelArtifacts": {"S3ModelArtifacts": os.environ["OUT"] + "/model.tar.gz"},
     "Backend": "ec2"}
if os.environ["STATUS"] != "Completed":
    d["FailureReason"] = os.environ["REASON"]
print(json.dumps([{"Source": "mlops.control-plane", "DetailType": "SageMaker Training Job State Change",
                    "Detail": json.dumps(d)}]))')
  aws events put-events --entries "$DETAIL"
}
trap finish EXIT

step() { REASON="$1"; }

step "could not install python"
dnf install -y -q python3.11 python3.11-pip || exit 1
python3.11 -m venv "$VENV" || exit 1

step "could not fetch the code bundle $CODE"
mkdir -p /opt/ml/code /opt/ml/model /opt/ml/output/data /opt/ml/input/config \
  /opt/ml/input/data/train
aws s3 cp "$CODE" /tmp/code.tar.gz && tar -xzf /tmp/code.tar.gz -C /opt/ml/code || exit 1

step "could not install the jobs' dependencies"
if [ -f /opt/ml/code/requirements.txt ]; then
  "$VENV/bin/pip" install -q -r /opt/ml/code/requirements.txt || exit 1
else
  "$VENV/bin/pip" install -q scikit-learn==1.9.1 pandas==3.1.1 numpy==2.4.6 pyarrow==24.0.0 matplotlib==3.11.2 joblib==1.6.0 || exit 1
fi

step "could not fetch the training data listed in $LINEAGE"
aws s3 cp "$LINEAGE" /tmp/lineage.json || exit 1
python3 -c '
import json
for o in json.load(open("/tmp/lineage.json"))["objects"]:
    print("\t".join([o["bucket"], o["key"], o["version_id"]]))' > /tmp/objects.tsv || exit 1
while IFS=$'\t' read -r BUCKET KEY VERSION; do
  DEST="/opt/ml/input/data/train/${KEY#incoming/}"
  mkdir -p "$(dirname "$DEST")"
  if [ "$VERSION" = null ]; then
    aws s3api get-object --bucket "$BUCKET" --key "$KEY" "$DEST" > /dev/null || exit 1
  else
    aws s3api get-object --bucket "$BUCKET" --key "$KEY" --version-id "$VERSION" \
      "$DEST" > /dev/null || exit 1
  fi
done < /tmp/objects.tsv

CHANNELS='["train"]'
if [ -n "$CHAMPION" ]; then
  # optional: without it the job trains as a first model would (no same-split comparison)
  mkdir -p /opt/ml/input/data/champion
  if aws s3 cp "$CHAMPION" /opt/ml/input/data/champion/model.tar.gz; then
    export SM_CHANNEL_CHAMPION=/opt/ml/input/data/champion
    CHANNELS='["champion", "train"]'
  else
    echo "could not fetch the champion's model $CHAMPION: no same-split comparison"
  fi
fi
if [ -n "$REFERENCE" ]; then
  # optional too: without it the gate refuses the model (not scored on the reference set)
  mkdir -p /opt/ml/input/data/reference
  if aws s3 cp "$REFERENCE" /opt/ml/input/data/reference/reference.csv; then
    export SM_CHANNEL_REFERENCE=/opt/ml/input/data/reference
    CHANNELS="${CHANNELS%]}, \"reference\"]"
  else
    echo "could not fetch the reference set $REFERENCE: the gate will refuse this model"
  fi
fi

cat > /opt/ml/input/config/hyperparameters.json <<'MLOPS_HPS'
{
 "target": "\"it's \\\"x\\\" $HOME `id` $(id) @@JOB@@ {job} ${x}\"",
 "max-label-shift": "0.1",
 "min-label-agreement": "0.25",
 "min-label-learnability": "0.25",
 "max-duplicate-share": "0.2",
 "note": "\"a\\\\b\\nc \\u00e9\"",
 "depth": "3",
 "sagemaker_program": "\"train.py\"",
 "sagemaker_submit_directory": "\"/opt/ml/code\"",
 "sagemaker_region": "\"eu-west-1\"",
 "sagemaker_job_name": "\"churn-20240502-000000-fedcba98\"",
 "sagemaker_container_log_level": "20"
}
MLOPS_HPS
# shellcheck disable=SC2016 # single-quoted on purpose: hyperparameters are never expanded
export SM_HPS='{"target": "it'"'"'s \"x\" $HOME `id` $(id) @@JOB@@ {job} ${x}", "max-label-shift": 0.1, "min-label-agreement": 0.25, "min-label-learnability": 0.25, "max-duplicate-share": 0.2, "note": "a\\b\nc \u00e9", "depth": 3}'
export SM_MODEL_DIR=/opt/ml/model SM_CHANNEL_TRAIN=/opt/ml/input/data/train
export SM_OUTPUT_DATA_DIR=/opt/ml/output/data SM_OUTPUT_DIR=/opt/ml/output
export SM_CHANNELS="$CHANNELS" SM_CURRENT_HOST=algo-1 SM_HOSTS='["algo-1"]'
SM_NUM_CPUS=$(nproc)
export SM_NUM_CPUS SM_MODULE_NAME=train SM_TRAINING_ENV="{}"

step "training failed (see host.log)"
cd /opt/ml/code || exit 1
timeout "$MAX_SECONDS" "$VENV/bin/python" -m jobs.train
RC=$?
if [ $RC -eq 124 ]; then step "MaxRuntimeExceeded: stopped after $MAX_SECONDS s"; exit 1; fi
[ $RC -eq 0 ] || exit 1

step "could not upload the artifacts to $OUT"
tar -czf /tmp/model.tar.gz -C /opt/ml/model . || exit 1
tar -czf /tmp/output.tar.gz -C /opt/ml/output/data . || exit 1
# shellcheck disable=SC2046 # $(sse) is split into its words on purpose
aws s3 cp /tmp/model.tar.gz "$OUT/model.tar.gz" $(sse) || exit 1
# shellcheck disable=SC2046 # $(sse) is split into its words on purpose
aws s3 cp /tmp/output.tar.gz "$OUT/output.tar.gz" $(sse) || exit 1
STATUS=Completed
REASON=""
