"""`python -m deploy` end to end against moto_server on 127.0.0.1: ECR, ECS, ELBv2, CodeDeploy, CloudFormation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
import yaml

from deploy.aws import Aws, AwsError, DeployError, ImageRef
from deploy.cli import main

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Env:
    """The AWS resources one test deploys into."""

    endpoint: str
    image: str
    repository: str
    values: dict[str, str]

    def args(self, **override: str) -> list[str]:
        """CLI arguments for a full deploy; override any flag by its dest name."""
        flags = {"image": self.image, "region": REGION, "endpoint_url": self.endpoint, **self.values, **override}
        out: list[str] = []
        for key, value in flags.items():
            out += ["--" + key.replace("_", "-"), value]
        return out


def client(endpoint: str, service: str):
    """A boto3 client on moto with fake credentials."""
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def make_environment(endpoint: str) -> Env:
    """What deploy/pipeline.yaml would create: ECR repo with an image, ALB with two target groups, ECS service,
    CodeDeploy blue/green group, roles, secret, log group."""
    name = f"roomfit-{uuid.uuid4().hex[:8]}"
    ecr = client(endpoint, "ecr")
    repo = ecr.create_repository(repositoryName=name)["repository"]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}, "layers": []}
    ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=COMMIT)

    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    elb = client(endpoint, "elbv2")
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = [elb.create_target_group(Name=f"{name}-{c}", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip",
                                   HealthCheckPath="/readyz")["TargetGroups"][0] for c in "bg"]
    listeners = [elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]["ListenerArn"]
        for port, tg in ((80, tgs[0]), (8080, tgs[1]))]

    iam = client(endpoint, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    roles = {k: iam.create_role(RoleName=f"{name}-{k}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
             for k in ("execution", "task", "codedeploy")}
    secret = client(endpoint, "secretsmanager").create_secret(Name=f"{name}/secret-key", SecretString="x" * 64)
    client(endpoint, "logs").create_log_group(logGroupName=f"/ecs/{name}")

    ecs = client(endpoint, "ecs")
    ecs.create_cluster(clusterName=name)
    ecs.create_service(cluster=name, serviceName=name, desiredCount=0, launchType="FARGATE",
                       deploymentController={"type": "CODE_DEPLOY"},
                       loadBalancers=[{"targetGroupArn": tgs[0]["TargetGroupArn"], "containerName": "roomfit",
                                       "containerPort": 8000}])
    cd = client(endpoint, "codedeploy")
    cd.create_application(applicationName=name, computePlatform="ECS")
    cd.create_deployment_group(
        applicationName=name, deploymentGroupName=name, serviceRoleArn=roles["codedeploy"],
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5}},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        ecsServices=[{"clusterName": name, "serviceName": name}],
        loadBalancerInfo={"targetGroupPairInfoList": [{
            "targetGroups": [{"name": tg["TargetGroupName"]} for tg in tgs],
            "prodTrafficRoute": {"listenerArns": [listeners[0]]},
            "testTrafficRoute": {"listenerArns": [listeners[1]]}}]},
    )
    return Env(
        endpoint=endpoint, image=f"{repo['repositoryUri']}:{COMMIT}", repository=name,
        values={"execution_role_arn": roles["execution"], "task_role_arn": roles["task"],
                "secret_key_arn": secret["ARN"], "log_group": f"/ecs/{name}", "application": name,
                "deployment_group": name},
    )


@pytest.fixture
def env(moto_endpoint: str, fake_aws_env: None) -> Env:
    """A fresh set of resources in moto for each test."""
    return make_environment(moto_endpoint)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, a single `error:` line naming the problem, and no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def check_deployed(env: Env, summary: dict[str, str]) -> None:
    """The registered task definition carries the image and the deployment carries its ARN."""
    arn = summary["taskDefinitionArn"]
    td = client(env.endpoint, "ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    (c,) = td["containerDefinitions"]
    assert c["name"] == "roomfit" and c["image"] == env.image
    assert [m["containerPort"] for m in c["portMappings"]] == [8000]
    assert "http://127.0.0.1:8000/healthz" in " ".join(c["healthCheck"]["command"])
    assert {s["name"]: s["valueFrom"] for s in c["secrets"]} == {"SECRET_KEY": env.values["secret_key_arn"]}
    assert "SECRET_KEY" not in {e["name"] for e in c["environment"]}
    assert c["readonlyRootFilesystem"] is True
    assert c["logConfiguration"]["options"]["awslogs-region"] == REGION
    assert c["logConfiguration"]["options"]["awslogs-group"] == env.values["log_group"]
    assert td["executionRoleArn"] == env.values["execution_role_arn"]
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"

    info = client(env.endpoint, "codedeploy").get_deployment(deploymentId=summary["deploymentId"])["deploymentInfo"]
    assert info["applicationName"] == env.values["application"]
    assert info["deploymentGroupName"] == env.values["deployment_group"]
    revision = info["revision"]
    assert revision["revisionType"] == "AppSpecContent"
    content = revision["appSpecContent"]["content"]
    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    props = yaml.safe_load(content)["Resources"][0]["TargetService"]["Properties"]
    assert props["TaskDefinition"] == arn
    assert props["LoadBalancerInfo"] == {"ContainerName": "roomfit", "ContainerPort": 8000}


def test_deploy_registers_taskdef_and_creates_deployment(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(env.args(), capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["image"] == env.image
    check_deployed(env, summary)


def test_python_m_deploy_entry_point(moto_endpoint: str, fake_aws_env: None) -> None:
    """The real command line, as ops run it: exit 0 and a JSON summary on stdout."""
    env = make_environment(moto_endpoint)
    proc = subprocess.run([sys.executable, "-m", "deploy", *env.args()], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    check_deployed(env, json.loads(proc.stdout))


def test_deploy_reads_names_from_stack_outputs(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """--stack fills ARNs and names from the CloudFormation outputs that deploy/pipeline.yaml declares."""
    keys = {"execution_role_arn": "ExecutionRoleArn", "task_role_arn": "TaskRoleArn",
            "secret_key_arn": "SecretKeyArn", "log_group": "LogGroupName", "application": "CodeDeployApplication",
            "deployment_group": "DeploymentGroup"}
    template = {"Resources": {"Marker": {"Type": "AWS::Logs::LogGroup",
                                         "Properties": {"LogGroupName": f"/marker/{env.repository}"}}},
                "Outputs": {keys[k]: {"Value": v} for k, v in env.values.items()}}
    client(env.endpoint, "cloudformation").create_stack(StackName=env.repository, TemplateBody=json.dumps(template))
    code, out, err = run_main(["--image", env.image, "--stack", env.repository, "--region", REGION,
                               "--endpoint-url", env.endpoint], capsys)
    assert code == 0, err
    check_deployed(env, json.loads(out))


def test_unknown_stack(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--image", env.image, "--stack", "no-such-stack", "--region", REGION,
                             "--endpoint-url", env.endpoint], capsys)
    assert_one_line_error(code, err, "no-such-stack")


def test_unknown_repository(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    image = env.image.replace(f"/{env.repository}:", "/no-such-repo:")
    code, _, err = run_main(env.args(image=image), capsys)
    assert_one_line_error(code, err, "unknown ECR repository", "no-such-repo")


def test_image_tag_not_pushed(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(env.args(image=env.image.replace(COMMIT, "f" * 40)), capsys)
    assert_one_line_error(code, err, "has no image", "push it first")


def test_latest_tag_refused(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(env.args(image=env.image.replace(COMMIT, "latest")), capsys)
    assert_one_line_error(code, err, "not `latest`")


def test_unknown_deployment_group(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(env.args(deployment_group="nope"), capsys)
    assert_one_line_error(code, err, "deployment group 'nope' not found")


def test_missing_credentials(moto_endpoint: str, no_aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    env = Env(moto_endpoint, f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/roomfit:{COMMIT}", "roomfit",
              {"execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/e", "task_role_arn": f"arn:aws:iam::{ACCOUNT}:role/t",
               "secret_key_arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:k", "log_group": "/ecs/roomfit",
               "application": "roomfit", "deployment_group": "roomfit"})
    code, _, err = run_main(env.args(), capsys)
    assert_one_line_error(code, err, "no AWS credentials")


def test_endpoint_url_that_is_not_a_url(fake_aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--image", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/roomfit:{COMMIT}",
                             "--stack", "roomfit", "--endpoint-url", "notaurl"], capsys)
    assert_one_line_error(code, err, "--endpoint-url must be an http(s) URL")


def test_missing_region(moto_endpoint: str, no_aws_env: None, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, _, err = run_main(["--image", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/roomfit:{COMMIT}",
                             "--stack", "roomfit", "--endpoint-url", moto_endpoint], capsys)
    assert_one_line_error(code, err, "no AWS region")


@pytest.mark.parametrize(
    ("filename", "text", "needle"),
    [
        ("taskdef.json", '{"family": "roomfit",}', "invalid JSON at line 1"),
        ("taskdef.json", '{"family": "roomfit"}', "required property"),
        ("appspec.yaml", "version: 0.0\nResources: [\n", "invalid YAML"),
        ("appspec.yaml", "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
                         "      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n"
                         "        LoadBalancerInfo: {ContainerName: web, ContainerPort: 8000}\n",
         "ContainerName 'web' is not a container"),
        ("missing.json", None, "file not found"),
    ],
)
def test_malformed_files(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str], filename: str,
                         text: str | None, needle: str) -> None:
    path = tmp_path / filename
    if text is not None:
        path.write_text(text)
    flag = "taskdef" if filename.endswith(".json") else "appspec"
    ecs = client(env.endpoint, "ecs")
    before = ecs.list_task_definitions(familyPrefix="roomfit")["taskDefinitionArns"]
    code, _, err = run_main(env.args(**{flag: str(path)}), capsys)
    assert_one_line_error(code, err, needle)
    # Nothing is registered from a broken file.
    assert ecs.list_task_definitions(familyPrefix="roomfit")["taskDefinitionArns"] == before


def test_check_only_and_dry_run_call_no_write_api(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["--check-only"], capsys)
    assert code == 0 and json.loads(out)["status"] == "ok", err
    ecs = client(env.endpoint, "ecs")
    before = ecs.list_task_definitions(familyPrefix="roomfit")["taskDefinitionArns"]
    code, out, err = run_main([*env.args(), "--dry-run"], capsys)
    assert code == 0, err
    assert env.image in out and "<IMAGE1_NAME>" not in out and "<TASK_DEFINITION>" not in out
    assert ecs.list_task_definitions(familyPrefix="roomfit")["taskDefinitionArns"] == before


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/roomfit:{COMMIT}", (ACCOUNT, REGION, "roomfit", COMMIT, None)),
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/roomfit@sha256:{'a' * 64}",
         (ACCOUNT, REGION, "team/roomfit", None, "sha256:" + "a" * 64)),
        ("127.0.0.1:5000/roomfit:abc", (None, None, None, "abc", None)),
    ],
)
def test_image_ref_parse(uri: str, expected: tuple) -> None:
    ref = ImageRef.parse(uri)
    assert (ref.registry_id, ref.region, ref.repository, ref.tag, ref.digest) == expected


@pytest.mark.parametrize("uri", ["roomfit", "127.0.0.1:5000/roomfit", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/r:latest"])
def test_image_ref_needs_a_fixed_tag(uri: str) -> None:
    with pytest.raises(DeployError):
        ImageRef.parse(uri)


def test_unknown_profile(no_aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--image", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/roomfit:{COMMIT}",
                             "--stack", "roomfit", "--region", REGION, "--profile", "nobody"], capsys)
    assert_one_line_error(code, err, "profile 'nobody' not found")


def test_wait_reports_a_failed_deployment(fake_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """--wait turns a failed (rolled back) deployment into one line naming CodeDeploy's reason."""
    aws = Aws(region=REGION)
    codedeploy = boto3.client("codedeploy", region_name=REGION)
    failed = {"deploymentInfo": {"deploymentId": "d-1", "status": "Failed",
                                 "errorInformation": {"code": "ECS_UPDATE_ERROR",
                                                      "message": "tasks failed their health checks"}}}
    monkeypatch.setattr(aws, "client", lambda service, region=None: codedeploy)
    with Stubber(codedeploy) as stub:
        stub.add_response("get_deployment", failed, {"deploymentId": "d-1"})
        with pytest.raises(AwsError, match="d-1 Failed: tasks failed their health checks"):
            aws.wait_for_deployment("d-1", 1)
