"""How the API reaches a role's services: each answers ``wrong_role`` on another role.

A route for a user feature asks :func:`user_role` for the node's
:class:`~dchat_node.user._role.UserRole` (its ``user``, ``documents``,
``features``, ``guardians``, ``burners`` and ``requests`` services); a chain
route asks :func:`validator_service`, a relay route :func:`relay_role`. On a
node of another role (or a validator that has not started) they raise :class:`NodeStateError`
``wrong_role``, which the API answers with its usual error shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import NodeStateError
from ..relay._role import RelayRole
from ..user._role import UserRole
from ..validator._role import ValidatorRole

if TYPE_CHECKING:
    from .._runtime import Node
    from ..validator._service import ValidatorService

__all__ = ("relay_role", "user_role", "validator_service")


def user_role(node: Node) -> UserRole:
    """The node's user role."""
    if not isinstance(node.role, UserRole):
        raise NodeStateError("wrong_role", "this node does not have the user role")
    return node.role


def relay_role(node: Node) -> RelayRole:
    """The node's relay role."""
    if not isinstance(node.role, RelayRole):
        raise NodeStateError("wrong_role", "this node does not have the relay role")
    return node.role


def validator_service(node: Node) -> ValidatorService:
    """The node's consensus shell (validator role, once started)."""
    if not isinstance(node.role, ValidatorRole) or node.role.service is None:
        raise NodeStateError("wrong_role", "this node does not have the validator role")
    return node.role.service
