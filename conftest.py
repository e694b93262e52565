"""Every package's tests share dchat-testing's fixtures (see dchat_testing.pytest_plugin)."""

from __future__ import annotations

pytest_plugins = ("dchat_testing.pytest_plugin",)
