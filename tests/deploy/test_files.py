"""Schema-level checks of taskdef.json, appspec.yaml, buildspec.yml, deploy/pipeline.yaml and the Dockerfile, and
their consistency with each other and with the web app's routes."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode

from deploy.files import (
    IMAGE_PLACEHOLDER,
    DeployFileError,
    appspec_target,
    consistency_problems,
    container,
    health_check_url,
    load_appspec_text,
    load_taskdef,
    parse_appspec,
    parse_taskdef,
    placeholders,
    render_appspec,
    render_taskdef,
)

ROOT = Path(__file__).resolve().parents[2]
VALUES = {
    "IMAGE1_NAME": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/roomfit:0123abc",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/roomfit-execution",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/roomfit-task",
    "SECRET_KEY_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:roomfit-AbCdEf",
    "LOG_GROUP": "/ecs/roomfit",
    "AWS_REGION": "eu-west-1",
}


@pytest.fixture(scope="module")
def taskdef() -> dict[str, Any]:
    return load_taskdef(ROOT / "taskdef.json")


@pytest.fixture(scope="module")
def appspec() -> dict[str, Any]:
    return load_appspec_text(ROOT / "appspec.yaml")[1]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    tpl, matches = decode(str(ROOT / "deploy" / "pipeline.yaml"))
    assert not matches, matches
    return tpl


def app_routes() -> set[str]:
    """GET routes the web app declares (read from its source, so no model or database is needed)."""
    routes: set[str] = set()
    for path in (ROOT / "webapp").glob("*.py"):
        routes |= set(re.findall(r"""\.(?:get|route)\(\s*["'](/[^"'<]*)["']""", path.read_text(encoding="utf-8")))
    return routes


def needs_webapp() -> set[str]:
    routes = app_routes()
    if not routes:
        pytest.skip("webapp/ declares no routes yet")
    return routes


# ---------- taskdef.json / appspec.yaml ----------

def test_taskdef_schema_and_fargate_size(taskdef: dict[str, Any]) -> None:
    assert taskdef["requiresCompatibilities"] == ["FARGATE"] and taskdef["networkMode"] == "awsvpc"
    # 2 gunicorn workers of ~150 MB plus the master fit in 2 GB with room for request buffers and the cut-out
    # cache; 1 vCPU serves both workers' CPU-bound inference.
    assert (taskdef["cpu"], taskdef["memory"]) == ("1024", "2048")


def test_taskdef_container_contract(taskdef: dict[str, Any]) -> None:
    c = container(taskdef, "roomfit")
    assert c is not None and c["essential"] is True
    assert c["image"] == IMAGE_PLACEHOLDER
    assert [m["containerPort"] for m in c["portMappings"]] == [8000]
    assert c["healthCheck"]["command"][:2] == ["CMD", "python"]
    assert health_check_url(c) == "http://127.0.0.1:8000/healthz"
    assert c["logConfiguration"]["logDriver"] == "awslogs"
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert "SECRET_KEY" not in env and env["CACHE_DIR"].startswith("/tmp/")
    assert [s["name"] for s in c["secrets"]] == ["SECRET_KEY"]
    assert c["readonlyRootFilesystem"] is True
    assert {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False} in c["mountPoints"]


def test_appspec_schema(appspec: dict[str, Any]) -> None:
    target = appspec_target(appspec)
    assert target["TaskDefinition"] == "<TASK_DEFINITION>"
    assert target["LoadBalancerInfo"] == {"ContainerName": "roomfit", "ContainerPort": 8000}


def test_taskdef_and_appspec_agree(taskdef: dict[str, Any], appspec: dict[str, Any]) -> None:
    assert consistency_problems(taskdef, appspec) == []


def test_rendered_taskdef_is_a_valid_ecs_request(taskdef: dict[str, Any]) -> None:
    rendered = render_taskdef(taskdef, VALUES)
    assert placeholders(rendered) == set()
    assert rendered["containerDefinitions"][0]["image"] == VALUES["IMAGE1_NAME"]


def test_render_appspec_fills_the_arn() -> None:
    text, _ = load_appspec_text(ROOT / "appspec.yaml")
    arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/roomfit:7"
    assert appspec_target(parse_appspec(render_appspec(text, arn)))["TaskDefinition"] == arn


def test_health_check_paths_exist_in_the_app(taskdef: dict[str, Any], template: dict[str, Any]) -> None:
    routes = needs_webapp()
    url = health_check_url(container(taskdef, "roomfit"))
    assert url is not None and url.split(":8000", 1)[1] in routes
    for name in ("TargetGroupBlue", "TargetGroupGreen"):
        assert template["Resources"][name]["Properties"]["HealthCheckPath"] in routes


def test_stack_task_definition_has_the_taskdef_environment(taskdef: dict[str, Any], template: dict[str, Any]) -> None:
    # The stack's first task definition serves until the first `python -m deploy`: without PROXY_COUNT every user
    # shared the load balancer's address, and so one rate-limit bucket.
    want = {e["name"]: e["value"] for e in container(taskdef, "roomfit")["environment"]}
    [stack] = template["Resources"]["InitialTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert {e["Name"]: e["Value"] for e in stack["Environment"]} == want


# ---------- what the checks reject ----------

def _mutated(taskdef: dict[str, Any], change) -> str:
    data = copy.deepcopy(taskdef)
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["containerDefinitions"][0]["environment"].append({"name": "SECRET_KEY", "value": "x"}),
         "should not be valid"),
        (lambda d: d.update(networkMode="bridge"), "awsvpc"),
        (lambda d: d.update(memory="512"), "not a Fargate size"),
        (lambda d: d["containerDefinitions"][0].pop("healthCheck"), "healthCheck"),
        (lambda d: d["containerDefinitions"][0]["logConfiguration"].update(logDriver="json-file"), "awslogs"),
        (lambda d: d["containerDefinitions"][0]["secrets"][0].update(valueFrom="hunter2"), "does not match"),
    ],
)
def test_taskdef_schema_rejects(taskdef: dict[str, Any], change, needle: str) -> None:
    with pytest.raises(DeployFileError, match=re.escape(needle)):
        parse_taskdef(_mutated(taskdef, change))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["containerDefinitions"][0].update(image="roomfit:latest"), "placeholder <IMAGE1_NAME>"),
        (lambda d: d["containerDefinitions"][0]["portMappings"][0].update(containerPort=80), "ContainerPort 8000"),
        (lambda d: d["containerDefinitions"][0]["healthCheck"].update(
            command=["CMD-SHELL", "curl -f http://127.0.0.1:8000/healthz"]), "curl"),
        (lambda d: d["containerDefinitions"][0].update(secrets=[]), "SECRET_KEY"),
        (lambda d: d.update(volumes=[]), "writable task volume"),
    ],
)
def test_consistency_rejects(taskdef: dict[str, Any], appspec: dict[str, Any], change, needle: str) -> None:
    problems = consistency_problems(json.loads(_mutated(taskdef, change)), appspec)
    assert any(needle in p for p in problems), problems


def test_unfilled_placeholder_and_bad_request_shape(taskdef: dict[str, Any]) -> None:
    with pytest.raises(DeployFileError, match="no value for placeholder.*SECRET_KEY_ARN"):
        render_taskdef(taskdef, {k: v for k, v in VALUES.items() if k != "SECRET_KEY_ARN"})
    data = copy.deepcopy(taskdef)
    data["containerDefinitions"][0]["portMapping"] = []  # a typo ECS would reject
    with pytest.raises(DeployFileError, match="RegisterTaskDefinition"):
        render_taskdef(data, VALUES)


# ---------- buildspec.yml ----------

def test_buildspec_tags_with_commit_and_emits_image_detail(taskdef: dict[str, Any]) -> None:
    text = (ROOT / "buildspec.yml").read_text()
    spec = yaml.safe_load(text)
    assert str(spec["version"]) == "0.2"
    assert set(spec["phases"]) == {"pre_build", "build", "post_build"}
    commands = "\n".join(c for phase in spec["phases"].values() for c in phase["commands"])
    assert 'IMAGE_TAG="$CODEBUILD_RESOLVED_SOURCE_VERSION"' in commands
    assert not re.search(r":latest\b", text)
    assert 'docker push "$IMAGE_URI"' in commands and "imageDetail.json" in commands
    assert set(spec["artifacts"]["files"]) == {"imageDetail.json", "taskdef.json", "appspec.yaml"}
    # Every account-specific placeholder is filled by the build; <IMAGE1_NAME> is left for CodePipeline.
    for name in placeholders(taskdef) - {"IMAGE1_NAME"}:
        assert f"s|<{name}>|" in commands, name
    assert "s|<IMAGE1_NAME>|" not in commands


# ---------- deploy/pipeline.yaml ----------

def test_template_pipeline_shape(template: dict[str, Any]) -> None:
    res = template["Resources"]
    kinds = {r["Type"] for r in res.values()}
    assert {"AWS::ECR::Repository", "AWS::ECS::Cluster", "AWS::ECS::Service", "AWS::CodeDeploy::DeploymentGroup",
            "AWS::CodePipeline::Pipeline", "AWS::ApplicationAutoScaling::ScalingPolicy",
            "AWS::ElasticLoadBalancingV2::LoadBalancer"} <= kinds
    assert "LifecyclePolicyText" in res["Repository"]["Properties"]["LifecyclePolicy"]
    json.loads(res["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
    assert res["Service"]["Properties"]["DeploymentController"] == {"Type": "CODE_DEPLOY"}
    assert res["CpuScalingPolicy"]["Properties"]["PolicyType"] == "TargetTrackingScaling"
    tgs = [n for n, r in res.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    listeners = [n for n, r in res.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"]
    assert len(tgs) == 2 and len(listeners) == 2
    dg = res["DeploymentGroup"]["Properties"]
    assert dg["DeploymentStyle"] == {"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert dg["AutoRollbackConfiguration"]["Enabled"] is True
    pair = dg["LoadBalancerInfo"]["TargetGroupPairInfoList"][0]
    assert len(pair["TargetGroups"]) == 2 and pair["TestTrafficRoute"] and pair["ProdTrafficRoute"]
    stages = {s["Name"]: s["Actions"] for s in res["Pipeline"]["Properties"]["Stages"]}
    providers = {a["ActionTypeId"]["Provider"]: a for actions in stages.values() for a in actions}
    assert "ECR" in providers and "CodeDeployToECS" in providers
    deploy = providers["CodeDeployToECS"]["Configuration"]
    assert deploy["Image1ContainerName"] == IMAGE_PLACEHOLDER.strip("<>")
    assert (deploy["TaskDefinitionTemplatePath"], deploy["AppSpecTemplatePath"]) == ("taskdef.json", "appspec.yaml")


def test_template_outputs_feed_the_deploy_command(template: dict[str, Any]) -> None:
    from deploy.aws import STACK_OUTPUT_FOR

    assert set(STACK_OUTPUT_FOR.values()) <= set(template["Outputs"])


def test_template_initial_task_definition_matches_taskdef(template: dict[str, Any], taskdef: dict[str, Any]) -> None:
    """The service's first revision (CloudFormation) and later ones (taskdef.json) must look alike to CodeDeploy."""
    props = template["Resources"]["InitialTaskDefinition"]["Properties"]
    (cfn,) = props["ContainerDefinitions"]
    c = container(taskdef, cfn["Name"])
    assert c is not None
    assert props["Family"] == taskdef["family"]
    assert [p["ContainerPort"] for p in cfn["PortMappings"]] == [m["containerPort"] for m in c["portMappings"]]
    assert cfn["HealthCheck"]["Command"] == c["healthCheck"]["command"]
    assert [s["Name"] for s in cfn["Secrets"]] == [s["name"] for s in c["secrets"]]
    assert cfn["ReadonlyRootFilesystem"] == c["readonlyRootFilesystem"]
    assert [m["ContainerPath"] for m in cfn["MountPoints"]] == [m["containerPath"] for m in c["mountPoints"]]
    assert template["Parameters"]["TaskCpu"]["Default"] == taskdef["cpu"]
    assert template["Parameters"]["TaskMemory"]["Default"] == taskdef["memory"]
    lb = template["Resources"]["Service"]["Properties"]["LoadBalancers"][0]
    assert (lb["ContainerName"], lb["ContainerPort"]) == (cfn["Name"], 8000)


# ---------- Dockerfile ----------

def test_dockerfile_contract(taskdef: dict[str, Any]) -> None:
    path = ROOT / "Dockerfile"
    if not path.exists():
        pytest.skip("no Dockerfile yet")
    # One logical instruction per line: join the backslash continuations.
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage build"
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^ENV .*PYTHONUNBUFFERED=1", text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*$", text, re.M)
    assert healthcheck and "curl" not in text
    assert "'http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz'" in healthcheck.group(0)
    assert "python3 -m venv" in text, "the debootstrap base has python3 and no pip"
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the final stage runs as a non-root user"
    assert "gunicorn.conf.py" in text
    # .dockerignore is an allow-list: everything out, then only what the image needs back in.
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:] for ln in lines if ln.startswith("!")}
    assert {"requirements.txt", "gunicorn.conf.py", "webapp/", "data/demo/", "models/*.json",
            "models/*.tflite"} <= allowed
    assert not any(a.startswith(("tests", ".venv", "training", "scraper", "data/ikea", "data/labels"))
                   or a.endswith(".h5") for a in allowed)
    assert "**/__pycache__" in lines


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_dockerfile_health_check_follows_port(status: int, healthy: bool) -> None:
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    command = json.loads(re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.M).group(1))
    assert command[:2] == ["python", "-c"]

    class App(BaseHTTPRequestHandler):
        """A stand-in for the app whose /healthz answers `status`."""

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Without proxy variables, which urllib would otherwise send even 127.0.0.1 through.
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        proc = subprocess.run([sys.executable, *command[1:]], env={**env, "PORT": str(server.server_port)},
                              capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (proc.returncode == 0) == healthy, proc.stderr
