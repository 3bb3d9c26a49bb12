"""boto3 ``credential_process``: the Google service account of this VM -> an AWS role session.

Workload identity federation without keys: the GCE metadata server signs an ID token for the
VM's service account (audience: the AWS role ARN), and STS AssumeRoleWithWebIdentity trades it
for temporary credentials of ``$PROFILE_DEDUP_AWS_ROLE_ARN``, whose trust policy accepts that
service account (deploy/iam/trust-gcp-dataflow.json). Prints the credential_process JSON.
"""
import json
import os
import urllib.parse
import urllib.request

import boto3
from botocore import UNSIGNED
from botocore.config import Config

METADATA = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity"


def main() -> None:
    role = os.environ["PROFILE_DEDUP_AWS_ROLE_ARN"]
    query = urllib.parse.urlencode({"audience": role, "format": "full"})
    request = urllib.request.Request(f"{METADATA}?{query}", headers={"Metadata-Flavor": "Google"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = answer.read().decode()
    sts = boto3.client("sts", config=Config(signature_version=UNSIGNED),
                       region_name=os.environ.get("AWS_REGION", "us-east-1"))
    session = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="profile-dedup-dataflow",
                                                WebIdentityToken=token, DurationSeconds=3600)["Credentials"]
    print(json.dumps({"Version": 1, "AccessKeyId": session["AccessKeyId"],
                      "SecretAccessKey": session["SecretAccessKey"], "SessionToken": session["SessionToken"],
                      "Expiration": session["Expiration"].isoformat()}))


if __name__ == "__main__":
    main()
