"""The relay role: the link listener and the shell around :class:`dchat_network.RelayServer`."""

from __future__ import annotations
