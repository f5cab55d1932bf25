"""Linters for the deployment files: hadolint (Dockerfile) and cfn-lint (CloudFormation template)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    """Path of a linter installed in the running venv (requirements-dev.txt), else on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements-dev.txt)")
    return found


def test_hadolint_dockerfile() -> None:
    if not (ROOT / "Dockerfile").exists():
        pytest.skip("no Dockerfile yet")
    proc = subprocess.run([tool("hadolint"), "--failure-threshold", "info", "Dockerfile"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_template() -> None:
    proc = subprocess.run([tool("cfn-lint"), "deploy/pipeline.yaml"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
