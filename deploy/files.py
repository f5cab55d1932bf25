"""Load, check and render the deployment files: taskdef.json and appspec.yaml."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from botocore.session import get_session
from botocore.validate import ParamValidator

log = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<IMAGE1_NAME>"
TASKDEF_PLACEHOLDER = "<TASK_DEFINITION>"
PLACEHOLDER_RE = re.compile(r"<([A-Z0-9_]+)>")
# Names that must only ever arrive through `secrets` (valueFrom), never as literal environment values.
SECRET_NAMES = ("SECRET_KEY",)
# Fargate's allowed memory (MiB) for each CPU size (units), from the AWS Fargate task size table.
FARGATE_MEMORY = {
    "256": range(512, 2048 + 1, 512),
    "512": range(1024, 4096 + 1, 1024),
    "1024": range(2048, 8192 + 1, 1024),
    "2048": range(4096, 16384 + 1, 1024),
    "4096": range(8192, 30720 + 1, 1024),
}

_PLACEHOLDER_OR = r"^(<[A-Z0-9_]+>|{})$"

TASKDEF_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["family", "requiresCompatibilities", "networkMode", "cpu", "memory", "executionRoleArn",
                 "containerDefinitions"],
    "properties": {
        "family": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,255}$"},
        "requiresCompatibilities": {"type": "array", "contains": {"const": "FARGATE"}},
        "networkMode": {"const": "awsvpc"},
        "cpu": {"enum": sorted(FARGATE_MEMORY)},
        "memory": {"type": "string", "pattern": r"^[0-9]+$"},
        "executionRoleArn": {"type": "string", "pattern": _PLACEHOLDER_OR.format(r"arn:aws[a-z-]*:iam::\d{12}:role/.+")},
        "taskRoleArn": {"type": "string", "pattern": _PLACEHOLDER_OR.format(r"arn:aws[a-z-]*:iam::\d{12}:role/.+")},
        "containerDefinitions": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/container"}},
        "volumes": {"type": "array", "items": {"type": "object", "required": ["name"]}},
    },
    "$defs": {
        "container": {
            "type": "object",
            "required": ["name", "image", "essential", "portMappings", "healthCheck", "logConfiguration"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,255}$"},
                "image": {"type": "string", "minLength": 1},
                "essential": {"type": "boolean"},
                "portMappings": {
                    "type": "array", "minItems": 1,
                    "items": {"type": "object", "required": ["containerPort"],
                              "properties": {"containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                                             "protocol": {"enum": ["tcp", "udp"]}}},
                },
                "healthCheck": {
                    "type": "object", "required": ["command"],
                    "properties": {
                        "command": {"type": "array", "minItems": 2, "items": {"type": "string"},
                                    "prefixItems": [{"enum": ["CMD", "CMD-SHELL"]}]},
                        "interval": {"type": "integer", "minimum": 5, "maximum": 300},
                        "timeout": {"type": "integer", "minimum": 2, "maximum": 60},
                        "retries": {"type": "integer", "minimum": 1, "maximum": 10},
                        "startPeriod": {"type": "integer", "minimum": 0, "maximum": 300},
                    },
                },
                "logConfiguration": {
                    "type": "object", "required": ["logDriver", "options"],
                    "properties": {
                        "logDriver": {"const": "awslogs"},
                        "options": {"type": "object",
                                    "required": ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"]},
                    },
                },
                "environment": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name", "value"], "additionalProperties": False,
                              "properties": {"name": {"type": "string", "not": {"enum": list(SECRET_NAMES)}},
                                             "value": {"type": "string"}}},
                },
                "secrets": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name", "valueFrom"], "additionalProperties": False,
                              "properties": {"name": {"type": "string"},
                                             "valueFrom": {"type": "string", "pattern": _PLACEHOLDER_OR.format(
                                                 r"arn:aws[a-z-]*:(secretsmanager|ssm):.+|/[A-Za-z0-9_.\-/]+")}}},
                },
                "readonlyRootFilesystem": {"type": "boolean"},
            },
        },
    },
}

APPSPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "Resources"],
    "additionalProperties": False,
    "properties": {
        "version": {"enum": [0.0, "0.0"]},
        "Resources": {
            "type": "array", "minItems": 1, "maxItems": 1,
            "items": {
                "type": "object", "minProperties": 1, "maxProperties": 1,
                "additionalProperties": {
                    "type": "object", "required": ["Type", "Properties"],
                    "properties": {
                        "Type": {"const": "AWS::ECS::Service"},
                        "Properties": {
                            "type": "object", "required": ["TaskDefinition", "LoadBalancerInfo"],
                            "properties": {
                                "TaskDefinition": {"type": "string", "minLength": 1},
                                "LoadBalancerInfo": {
                                    "type": "object", "required": ["ContainerName", "ContainerPort"],
                                    "additionalProperties": False,
                                    "properties": {"ContainerName": {"type": "string", "minLength": 1},
                                                   "ContainerPort": {"type": "integer", "minimum": 1,
                                                                     "maximum": 65535}},
                                },
                                "PlatformVersion": {"type": "string"},
                                "NetworkConfiguration": {"type": "object"},
                                "CapacityProviderStrategy": {"type": "array"},
                            },
                        },
                    },
                },
            },
        },
        "Hooks": {
            "type": "array",
            "items": {"type": "object", "minProperties": 1, "maxProperties": 1,
                      "propertyNames": {"enum": ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic",
                                                 "BeforeAllowTraffic", "AfterAllowTraffic"]},
                      "additionalProperties": {"type": "string"}},
        },
    },
}


class DeployFileError(ValueError):
    """A deployment file is missing, unparsable, or breaks the contract."""


def _schema_error(name: str, error: jsonschema.ValidationError) -> DeployFileError:
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return DeployFileError(f"{name}: {where}: {error.message}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeployFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployFileError(f"{path}: cannot read: {exc}") from None


def parse_taskdef(text: str, name: str = "taskdef.json") -> dict[str, Any]:
    """Parse and schema-check task definition JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeployFileError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(TASKDEF_SCHEMA).iter_errors(data))
    if error is not None:
        raise _schema_error(name, error)
    cpu, memory = data["cpu"], int(data["memory"])
    if memory not in FARGATE_MEMORY[cpu]:
        raise DeployFileError(f"{name}: memory {memory} MiB is not a Fargate size for cpu {cpu}")
    return data


def parse_appspec(text: str, name: str = "appspec.yaml") -> dict[str, Any]:
    """Parse and schema-check AppSpec YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DeployFileError(f"{name}: invalid YAML{where}: {problem}") from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(APPSPEC_SCHEMA).iter_errors(data))
    if error is not None:
        raise _schema_error(name, error)
    return data


def load_taskdef(path: Path) -> dict[str, Any]:
    """Read and check taskdef.json."""
    return parse_taskdef(_read(path), str(path))


def load_appspec_text(path: Path) -> tuple[str, dict[str, Any]]:
    """Read and check appspec.yaml; returns its text (sent verbatim) and parsed form."""
    text = _read(path)
    return text, parse_appspec(text, str(path))


def appspec_target(appspec: Mapping[str, Any]) -> dict[str, Any]:
    """The Properties of the single ECS service resource in an AppSpec."""
    (resource,) = appspec["Resources"][0].values()
    return resource["Properties"]


def container(taskdef: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The container definition called `name`, or None."""
    return next((c for c in taskdef["containerDefinitions"] if c["name"] == name), None)


def health_check_url(container_def: Mapping[str, Any]) -> str | None:
    """The http URL the container health check requests, if it names one."""
    match = re.search(r"https?://[^\s'\"]+", " ".join(container_def.get("healthCheck", {}).get("command", [])))
    return match.group(0) if match else None


def consistency_problems(taskdef: Mapping[str, Any], appspec: Mapping[str, Any], *, template: bool = True) -> list[str]:
    """Everything that would make CodeDeploy or ECS reject this pair of files; empty when they agree."""
    problems: list[str] = []
    target = appspec_target(appspec)
    lb = target["LoadBalancerInfo"]
    name, port = lb["ContainerName"], lb["ContainerPort"]
    c = container(taskdef, name)
    if c is None:
        names = [d["name"] for d in taskdef["containerDefinitions"]]
        return [f"appspec ContainerName {name!r} is not a container in the task definition ({names})"]
    if port not in [m["containerPort"] for m in c["portMappings"]]:
        problems.append(f"appspec ContainerPort {port} is not a containerPort of container {name!r}")
    if template and c["image"] != IMAGE_PLACEHOLDER:
        problems.append(f"container {name!r} image must be the placeholder {IMAGE_PLACEHOLDER}, not {c['image']!r}")
    if template and target["TaskDefinition"] != TASKDEF_PLACEHOLDER:
        problems.append(f"appspec TaskDefinition must be the placeholder {TASKDEF_PLACEHOLDER}")
    if "curl" in " ".join(c["healthCheck"]["command"]):
        problems.append("health check uses curl, which the image does not ship")
    url = health_check_url(c)
    if url is None:
        problems.append("health check command names no http URL")
    elif f":{port}/" not in url:
        problems.append(f"health check URL {url} does not use the container port {port}")
    secret_names = {s["name"] for s in c.get("secrets", [])}
    for secret in SECRET_NAMES:
        if secret not in secret_names:
            problems.append(f"{secret} must come from `secrets` (Secrets Manager/SSM valueFrom)")
    if c.get("readonlyRootFilesystem"):
        volumes = {v["name"] for v in taskdef.get("volumes", [])}
        writable = [m for m in c.get("mountPoints", [])
                    if m.get("containerPath") == "/tmp" and not m.get("readOnly") and m.get("sourceVolume") in volumes]
        if not writable:
            problems.append("readonlyRootFilesystem needs a writable task volume mounted at /tmp")
    return problems


def placeholders(value: Any) -> set[str]:
    """All <NAME> placeholders in the strings of a JSON-like value."""
    if isinstance(value, str):
        return set(PLACEHOLDER_RE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """A copy of a JSON-like value with <NAME> placeholders replaced from `values` (unknown ones left as is)."""
    if isinstance(value, str):
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def render_taskdef(taskdef: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Fill every placeholder of the task definition and check it against the ECS API's own input shape."""
    rendered = fill(taskdef, values)
    missing = sorted(placeholders(rendered))
    if missing:
        raise DeployFileError(f"taskdef.json: no value for placeholder(s) {', '.join(missing)}")
    shape = get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(rendered, shape)
    if report.has_errors():
        first = report.generate_report().splitlines()[1:2] or ["invalid parameters"]
        raise DeployFileError(f"taskdef.json: not a valid RegisterTaskDefinition request: {first[0].strip()}")
    return rendered


def render_appspec(text: str, task_definition_arn: str) -> str:
    """The AppSpec text with <TASK_DEFINITION> replaced by the registered task definition ARN."""
    if TASKDEF_PLACEHOLDER not in text:
        raise DeployFileError(f"appspec.yaml: no {TASKDEF_PLACEHOLDER} placeholder to fill")
    return text.replace(TASKDEF_PLACEHOLDER, task_definition_arn)
