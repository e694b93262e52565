"""The user role: trio shells around the messaging engine and the identity agents.

``_role`` builds them (:class:`~.user._role.UserRole`); ``_service`` and
``_delivery`` are the messaging shell (outbox, sessions, mailbox tasks);
``_documents``, ``_devices``, ``_pairing``, ``_sync``, ``_profiles``,
``_guardians`` (guardians and recovery), ``_burners`` and ``_requests`` each
persist and send for agents of dchat-identity or dchat-messaging;
``_guardian_state`` holds the steps they share (loading stored blobs and maps,
commit, sealed sends, errors).
"""

from __future__ import annotations
