"""`python -m deploy`: register taskdef.json with a new image and start a CodeDeploy blue/green deployment."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deploy.aws import STACK_OUTPUT_FOR, Aws, AwsError, DeployError, ImageRef
from deploy.files import (
    DeployFileError,
    consistency_problems,
    load_appspec_text,
    load_taskdef,
    render_appspec,
    render_taskdef,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DRY_RUN_ARN = "arn:aws:ecs:{region}:000000000000:task-definition/{family}:0"


@dataclass
class DeployConfig:
    """Everything one deployment needs; unset values come from the stack outputs."""

    image: str | None
    taskdef: Path = ROOT / "taskdef.json"
    appspec: Path = ROOT / "appspec.yaml"
    stack: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    description: str = "RoomFit deploy"
    check_image: bool = True
    check_only: bool = False
    dry_run: bool = False
    wait_minutes: int = 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m deploy",
        description="Register taskdef.json with IMAGE and start a CodeDeploy ECS blue/green deployment "
        "with appspec.yaml. Names and ARNs come from the CloudFormation stack (--stack) unless given.",
    )
    p.add_argument("--image", help="image URI with a commit tag or digest, e.g. ACCOUNT.dkr.ecr.REGION.amazonaws.com/roomfit:COMMIT")
    p.add_argument("--stack", help="CloudFormation stack created from deploy/pipeline.yaml (supplies the values below)")
    p.add_argument("--application", help="CodeDeploy application name")
    p.add_argument("--deployment-group", help="CodeDeploy deployment group name")
    p.add_argument("--execution-role-arn", help="task execution role ARN")
    p.add_argument("--task-role-arn", help="task role ARN")
    p.add_argument("--secret-key-arn", help="Secrets Manager ARN (or SSM parameter) holding SECRET_KEY")
    p.add_argument("--log-group", help="CloudWatch Logs group for awslogs")
    p.add_argument("--taskdef", type=Path, default=ROOT / "taskdef.json", help="task definition template")
    p.add_argument("--appspec", type=Path, default=ROOT / "appspec.yaml", help="AppSpec template")
    p.add_argument("--region", help="AWS region (default: AWS_REGION / profile)")
    p.add_argument("--profile", help="AWS profile")
    p.add_argument("--endpoint-url", help="AWS endpoint override (tests use moto_server on 127.0.0.1)")
    p.add_argument("--description", default="RoomFit deploy", help="deployment description")
    p.add_argument("--skip-image-check", action="store_true", help="do not check that the image exists in ECR")
    p.add_argument("--check-only", action="store_true", help="only check taskdef.json and appspec.yaml (offline)")
    p.add_argument("--dry-run", action="store_true", help="render and print the files, call no write API")
    p.add_argument("--wait", type=int, default=0, metavar="MINUTES", help="wait up to MINUTES for the deployment to succeed")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def config_from_args(args: argparse.Namespace) -> DeployConfig:
    """Turn parsed arguments into a DeployConfig."""
    given = {
        "EXECUTION_ROLE_ARN": args.execution_role_arn,
        "TASK_ROLE_ARN": args.task_role_arn,
        "SECRET_KEY_ARN": args.secret_key_arn,
        "LOG_GROUP": args.log_group,
        "APPLICATION": args.application,
        "DEPLOYMENT_GROUP": args.deployment_group,
    }
    return DeployConfig(
        image=args.image, taskdef=args.taskdef, appspec=args.appspec, stack=args.stack,
        values={k: v for k, v in given.items() if v}, region=args.region, profile=args.profile,
        endpoint_url=args.endpoint_url, description=args.description, check_image=not args.skip_image_check,
        check_only=args.check_only, dry_run=args.dry_run, wait_minutes=args.wait,
    )


def check_files(cfg: DeployConfig) -> tuple[dict, str, dict]:
    """Load both templates and fail on any inconsistency between them."""
    taskdef = load_taskdef(cfg.taskdef)
    appspec_text, appspec = load_appspec_text(cfg.appspec)
    problems = consistency_problems(taskdef, appspec)
    if problems:
        raise DeployFileError(f"{cfg.taskdef.name} / {cfg.appspec.name}: {problems[0]}")
    return taskdef, appspec_text, appspec


def run(cfg: DeployConfig) -> dict[str, str]:
    """Check, render, register and deploy; returns a summary of what was done."""
    taskdef, appspec_text, _ = check_files(cfg)
    if cfg.check_only:
        return {"taskdef": str(cfg.taskdef), "appspec": str(cfg.appspec), "status": "ok"}
    if not cfg.image:
        raise DeployError("--image is required (REPOSITORY_URI:COMMIT)")
    ref = ImageRef.parse(cfg.image)
    aws = Aws(cfg.region, cfg.endpoint_url, cfg.profile)
    values = dict(cfg.values)
    if cfg.stack:
        outputs = aws.stack_outputs(cfg.stack)
        for key, output in STACK_OUTPUT_FOR.items():
            if key not in values and output in outputs:
                values[key] = outputs[output]
    missing = [k for k in STACK_OUTPUT_FOR if k not in values]
    if missing:
        flags = ", ".join("--" + k.lower().replace("_", "-") for k in missing)
        raise DeployError(f"missing {flags} (or pass --stack to read them from the CloudFormation outputs)")
    rendered = render_taskdef(taskdef, {**values, "IMAGE1_NAME": ref.uri, "AWS_REGION": aws.region})
    if cfg.dry_run:
        arn = DRY_RUN_ARN.format(region=aws.region, family=rendered["family"])
        print(json.dumps(rendered, indent=2))
        print(render_appspec(appspec_text, arn))
        return {"image": ref.uri, "taskDefinitionArn": arn, "deploymentId": "(dry run)"}
    if cfg.check_image:
        aws.check_image(ref)
    arn = aws.register_task_definition(rendered)
    log.info("registered %s", arn)
    deployment_id = aws.create_deployment(
        values["APPLICATION"], values["DEPLOYMENT_GROUP"], render_appspec(appspec_text, arn), cfg.description
    )
    log.info("started deployment %s", deployment_id)
    if cfg.wait_minutes:
        aws.wait_for_deployment(deployment_id, cfg.wait_minutes)
        log.info("deployment %s succeeded", deployment_id)
    return {
        "image": ref.uri, "taskDefinitionArn": arn, "deploymentId": deployment_id,
        "application": values["APPLICATION"], "deploymentGroup": values["DEPLOYMENT_GROUP"],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 2 for a problem the user can fix, 1 when AWS fails the request."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s",
                        stream=sys.stderr)
    if not args.verbose:
        # botocore logs credential lookups at INFO; they would bury the one line that matters.
        logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        summary = run(config_from_args(args))
    except (DeployError, DeployFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AwsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0
