"""The validator role: the trio shell around :class:`dchat_chain.lowlevel.ValidatorDriver`.

``_role`` unlocks the keys (``_keys``) and starts ``_service``, which carries
out the driver's effects over peer links (``_links``, ``_peers``, ``_wire``);
``_testnet`` writes local test networks, ``_trace`` the per-height timing log.
"""

from __future__ import annotations
