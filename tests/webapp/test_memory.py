"""Worker malloc settings (webapp/memory.py): glibc accepts them; elsewhere they are a no-op."""
import platform

import pytest

from webapp.memory import release_memory, tune_malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_malloc_is_accepted_by_glibc():
    assert tune_malloc() is True  # mmap threshold, trim threshold and the arena cap all set
    release_memory()
