"""The plugin lets the run's child processes share bytecode, outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

from dchat_testing.pytest_plugin import pytest_configure

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    pytest_configure(None)  # type: ignore[arg-type]  # the hook ignores its config


def test_children_write_bytecode_to_a_private_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _configure(monkeypatch, tmp_path)
    prefix = tmp_path / f"dchat-test-pycache-{os.getuid()}"
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert os.environ["PYTHONPYCACHEPREFIX"] == str(prefix)
    assert prefix.stat().st_mode & 0o777 == 0o700
    module = tmp_path / "src" / "planted.py"
    module.parent.mkdir()
    module.write_text("X = 1\n")
    subprocess.run(
        [sys.executable, "-c", "import planted"],
        cwd=module.parent,
        env={**os.environ, "PYTHONPATH": str(module.parent)},
        check=True,
        timeout=60,
    )
    assert list(prefix.rglob("planted*.pyc"))  # the child wrote its bytecode there
    assert not (module.parent / "__pycache__").exists()  # and not into the source tree


def test_a_directory_others_can_write_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shared = tmp_path / f"dchat-test-pycache-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    _configure(monkeypatch, tmp_path)
    chosen = os.environ["PYTHONPYCACHEPREFIX"]
    assert chosen != str(shared)
    assert os.stat(chosen).st_mode & 0o077 == 0


def test_a_prefix_the_user_chose_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "mine"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    pytest_configure(None)  # type: ignore[arg-type]
    assert os.environ["PYTHONPYCACHEPREFIX"] == str(tmp_path / "mine")
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
