"""The parts' import boundaries (pyproject.toml [tool.importlinter]) hold, and a breach of them is caught."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_repository_keeps_its_import_contracts():
    done = _lint(ROOT, ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("breach, broken", [
    ("import training\n", "never through each other's code"),
    ("from scraper import crawl\n", "never through each other's code"),
    ("import tensorflow\n", "serves without TensorFlow"),
    ("import ray\n", "serves without TensorFlow"),
])
def test_a_breach_fails_the_contracts(tmp_path, breach, broken):
    # A miniature tree with the real contracts: every part empty except the web app's one offending import.
    for part in ("core", "scraper", "training", "webapp", "deploy"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "__init__.py").write_text("")
    (tmp_path / "scraper" / "crawl.py").write_text("")
    for stand_in in ("tensorflow", "ray"):  # stand in for the real packages, which the check must not need
        (tmp_path / stand_in).mkdir()
        (tmp_path / stand_in / "__init__.py").write_text("")
    (tmp_path / "webapp" / "api.py").write_text(breach)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["importlinter"]
    done = _lint(tmp_path, tmp_path / "pyproject.toml")
    assert done.returncode != 0
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout, done.stdout


def _requirements(name: str) -> set[str]:
    """Package names a requirements file installs, its -r includes followed."""
    names: set[str] = set()
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= _requirements(line[3:].strip())
        elif line:
            names.add(line.split("==")[0].split("[")[0].strip().lower())
    return names


def test_the_serving_image_installs_no_batch_stack():
    serving, batch = _requirements("requirements.txt"), _requirements("requirements-batch.txt")
    assert {"ray", "fsspec", "s3fs"} <= batch
    assert not serving & {"ray", "fsspec", "s3fs", "boto3", "tensorflow-cpu", "onnxruntime"}
    assert batch <= _requirements("requirements-train.txt") <= _requirements("requirements-dev.txt")
