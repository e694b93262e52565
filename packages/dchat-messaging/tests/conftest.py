"""The engine harness lives in dchat_testing (the ``net`` fixture); re-exported for old imports."""

from __future__ import annotations

from dchat_testing import EngineDevice as Device  # noqa: F401
from dchat_testing import EngineNet as Net  # noqa: F401
