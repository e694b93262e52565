"""The validator role: the trio shell around :class:`dchat_chain.lowlevel.ValidatorDriver`.

``_role`` unlocks the keys (``_keys``: the encrypted key files, whose records
are ``dchat_chain.lowlevel``'s) and starts ``_service``, which carries out the
driver's effects over peer links (a :class:`dchat_network.lowlevel.QueuedLink` to each
peer, at the address ``dchat_chain.lowlevel.parse_peer`` reads, and
:func:`dchat_network.lowlevel.read_known_peer` for the links peers dial);
``_trace`` is the per-height timing log. Local testnets are planned by
``dchat_chain.lowlevel.plan_testnet`` and written by ``cli/_testnet``.
"""

from __future__ import annotations
