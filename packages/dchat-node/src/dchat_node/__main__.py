"""``python -m dchat_node`` runs the ``dchat-node`` command."""

from __future__ import annotations

from dchat_node.cli import node_main

node_main()
