"""Atomic writes: whole files or nothing, readable by other users."""
import stat

import pytest

from training.io import atomic_write_bytes


def test_atomic_write_is_world_readable(tmp_path):
    path = tmp_path / "sub" / "model.bin"
    atomic_write_bytes(path, b"abc")
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the container's app user reads shipped files


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "model.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
