"""The node's local HTTP API (FastAPI): ``_app`` builds it, one module per feature's routes."""

from __future__ import annotations
