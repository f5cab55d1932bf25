"""The AWS side of a deployment: image check, task definition registration, CodeDeploy deployment (boto3)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)

log = logging.getLogger(__name__)

ECR_URI_RE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)
# Any image reference with an explicit tag or digest (the last path segment carries it).
GENERIC_URI_RE = re.compile(r"^[^\s@]+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$")
# Task definition placeholders filled from the CloudFormation stack's outputs (deploy/pipeline.yaml).
STACK_OUTPUT_FOR = {
    "EXECUTION_ROLE_ARN": "ExecutionRoleArn",
    "TASK_ROLE_ARN": "TaskRoleArn",
    "SECRET_KEY_ARN": "SecretKeyArn",
    "LOG_GROUP": "LogGroupName",
    "APPLICATION": "CodeDeployApplication",
    "DEPLOYMENT_GROUP": "DeploymentGroup",
}
# Error codes that mean "your credentials or permissions", not "AWS broke": the user can fix these.
CREDENTIAL_CODES = {
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "ExpiredToken",
    "ExpiredTokenException", "AccessDenied", "AccessDeniedException", "SignatureDoesNotMatch",
}


class DeployError(Exception):
    """A problem the user can fix (credentials, names, files); reported in one line, exit status 2."""


class AwsError(Exception):
    """AWS refused or failed a call for another reason; reported in one line, exit status 1."""


@dataclass(frozen=True)
class ImageRef:
    """An image URI, split into its ECR parts when it is an ECR URI."""

    uri: str
    registry_id: str | None = None
    region: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None

    @property
    def is_ecr(self) -> bool:
        """True for <account>.dkr.ecr.<region>.amazonaws.com/<repo> URIs."""
        return self.repository is not None

    @classmethod
    def parse(cls, uri: str) -> ImageRef:
        """Parse an image URI; it must carry a tag or digest and must not be `latest`."""
        match = ECR_URI_RE.match(uri)
        if match:
            ref = cls(uri, match["registry"], match["region"], match["repository"], match["tag"], match["digest"])
        elif GENERIC_URI_RE.match(uri) and "@" in uri:
            ref = cls(uri, digest=uri.split("@", 1)[1])
        elif GENERIC_URI_RE.match(uri) and ":" in uri.rsplit("/", 1)[-1]:
            ref = cls(uri, tag=uri.rsplit(":", 1)[1])
        else:
            raise DeployError(f"image {uri!r} needs an explicit tag or digest (REPOSITORY_URI:COMMIT)")
        if ref.tag == "latest":
            raise DeployError(f"image {uri!r}: deploy a commit tag or digest, not `latest` (it moves under you)")
        return ref


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore exceptions raised by `action` into one-line DeployError/AwsError."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise DeployError(
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or run `aws configure`)"
        ) from None
    except NoRegionError:
        raise DeployError("no AWS region: pass --region or set AWS_REGION") from None
    except ProfileNotFound as exc:
        raise DeployError(f"AWS profile {exc.kwargs.get('profile')!r} not found in the AWS config") from None
    except EndpointConnectionError as exc:
        raise DeployError(f"{action}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", str(exc))
        if code in CREDENTIAL_CODES:
            raise DeployError(f"{action}: AWS rejected the credentials or permissions: {code}: {message}") from None
        raise AwsError(f"{action} failed: {code}: {message}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{action} failed: {exc}") from None


class Aws:
    """Thin boto3 wrapper with the calls a RoomFit deployment needs."""

    def __init__(self, region: str | None = None, endpoint_url: str | None = None, profile: str | None = None):
        if endpoint_url is not None:
            parts = urlsplit(endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:  # boto3 would raise a bare ValueError
                raise DeployError(f"--endpoint-url must be an http(s) URL such as http://127.0.0.1:5000, "
                                  f"got {endpoint_url!r}")
        with aws_errors("AWS session"):
            self.session = boto3.Session(region_name=region, profile_name=profile)
        if self.session.region_name is None:
            raise DeployError("no AWS region: pass --region or set AWS_REGION")
        self.region: str = self.session.region_name
        self.endpoint_url = endpoint_url
        # Few retries: a deploy command should fail fast and say why rather than hang.
        self.config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30)

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for `service` (in `region`, default the session's)."""
        return self.session.client(
            service, region_name=region or self.region, endpoint_url=self.endpoint_url, config=self.config
        )

    def stack_outputs(self, stack: str) -> dict[str, str]:
        """The outputs of a CloudFormation stack, by OutputKey."""
        with aws_errors(f"reading stack {stack!r}"):
            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
            except ClientError as exc:
                if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                    raise DeployError(f"CloudFormation stack {stack!r} not found in {self.region}") from None
                raise
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def check_image(self, ref: ImageRef) -> None:
        """Fail unless the ECR repository exists and holds the tag or digest."""
        if not ref.is_ecr:
            log.warning("image %s is not in ECR: not checking that it exists", ref.uri)
            return
        image_id = {"imageTag": ref.tag} if ref.tag else {"imageDigest": ref.digest}
        ecr = self.client("ecr", region=ref.region)
        with aws_errors("checking the image in ECR"):
            try:
                ecr.describe_images(registryId=ref.registry_id, repositoryName=ref.repository, imageIds=[image_id])
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "RepositoryNotFoundException":
                    raise DeployError(
                        f"unknown ECR repository {ref.repository!r} in account {ref.registry_id} ({ref.region})"
                    ) from None
                if code == "ImageNotFoundException":
                    raise DeployError(
                        f"ECR repository {ref.repository!r} has no image {ref.tag or ref.digest!r}: push it first"
                    ) from None
                raise

    def register_task_definition(self, taskdef: Mapping[str, Any]) -> str:
        """Register a task definition revision; returns its ARN."""
        with aws_errors("registering the task definition"):
            response = self.client("ecs").register_task_definition(**taskdef)
        return response["taskDefinition"]["taskDefinitionArn"]

    def create_deployment(self, application: str, group: str, appspec: str, description: str) -> str:
        """Start a CodeDeploy deployment whose revision is the given AppSpec content; returns its id."""
        revision = {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": appspec, "sha256": hashlib.sha256(appspec.encode()).hexdigest()},
        }
        with aws_errors("creating the CodeDeploy deployment"):
            try:
                response = self.client("codedeploy").create_deployment(
                    applicationName=application, deploymentGroupName=group, revision=revision,
                    description=description[:100],
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("ApplicationDoesNotExistException", "DeploymentGroupDoesNotExistException"):
                    raise DeployError(
                        f"CodeDeploy application {application!r} / deployment group {group!r} not found"
                    ) from None
                raise
        return response["deploymentId"]

    def wait_for_deployment(self, deployment_id: str, minutes: int) -> None:
        """Block until the deployment succeeds; AwsError when it fails, stops or times out."""
        waiter = self.client("codedeploy").get_waiter("deployment_successful")
        with aws_errors("waiting for the deployment"):
            try:
                waiter.wait(deploymentId=deployment_id, WaiterConfig={"Delay": 15, "MaxAttempts": minutes * 4})
            except WaiterError as exc:
                info = (exc.last_response or {}).get("deploymentInfo", {})
                reason = info.get("errorInformation", {}).get("message") or exc.reason
                raise AwsError(f"deployment {deployment_id} {info.get('status', 'did not succeed')}: {reason}") from None
