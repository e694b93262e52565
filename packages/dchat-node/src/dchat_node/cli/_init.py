"""``dchat-node init``: a commented ``dchat.toml`` for one role, from the templates.

``templates/<role>.toml`` explains the options of that role and ends naming
those it ignores; ``templates/common.toml`` (API access, logs) follows every
role's. In both, ``# name = value`` shows an option at its default (so
uncommenting it changes nothing: the tests hold the templates to that) and
``# e.g. name = value`` an example for an option without one. Only the
options ``init`` was given are active lines. The rendered text is parsed and
validated like any config before it is written (0600), so ``init`` never
leaves a file ``run`` would refuse.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from string import Template

from dchat_storage.lowlevel import write_private

from .._errors import ConfigError
from ..config import NodeConfig, load_config

__all__ = ("ROLE_ADDRESSES", "render_config", "write_config")

ROLE_ADDRESSES = {
    "user": ("127.0.0.1:8470", "127.0.0.1:0"),
    "relay": ("0.0.0.0:7400", "127.0.0.1:8471"),
    "validator": ("0.0.0.0:7500", "127.0.0.1:8472"),
}
"""Per role, the ``listen`` and ``api_listen`` that ``init`` writes unless told otherwise."""


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text()


def render_config(
    role: str,
    *,
    listen: str | None = None,
    api_listen: str | None = None,
    relay: str | None = None,
    database_url: str | None = None,
    relays: tuple[str, ...] = (),
) -> str:
    """The commented ``dchat.toml`` text for ``role``.

    One home relay (``relay``, or a ``relays`` of one) without a node id is
    written as ``relay = ...``, otherwise ``relays = [...]``.

    Raises:
        ConfigError: an unknown role, or a home relay for a node that is not a user.
    """
    relays = (*relays, *([relay] if relay else []))
    if role not in ROLE_ADDRESSES:
        raise ConfigError(f"unknown role {role!r}: choose user, relay or validator")
    if relays and role != "user":
        raise ConfigError("--relay names a user node's home relay; leave it out for a " + role)
    if database_url and role == "validator":
        raise ConfigError("--database-url is for user and relay nodes; a validator keeps node.db")
    default_listen, default_api = ROLE_ADDRESSES[role]
    relay_line = '# e.g. relay = "relay.example.org:7400"'
    if len(relays) == 1 and "@" not in relays[0]:
        relay_line = f"relay = {json.dumps(relays[0])}"
    elif relays:
        relay_line = f"relays = [{', '.join(json.dumps(r) for r in relays)}]"
    database_line = (
        f"database_url = {json.dumps(database_url)}"
        if database_url
        else f'# e.g. database_url = "postgresql://dchat@db.example.org:5432/dchat_{role}"'
    )
    text = Template(_template(f"{role}.toml")).substitute(
        listen=json.dumps(listen or default_listen),  # a TOML basic string, quotes escaped
        api_listen=json.dumps(api_listen or default_api),
        relay_line=relay_line,
        database_line=database_line,
    )
    table = {
        "relay": ["relay_limits.toml", "relay_claims.toml", "relay_tokens.toml"],
        "user": ["relay_discovery.toml", "bot_limits.toml"],
    }
    tables = "".join("\n" + _template(name) for name in table.get(role, []))
    return text + _template("common.toml") + tables  # [node.X] tables after all node keys


def write_config(data_dir: Path, text: str) -> NodeConfig:
    """Validate ``text`` as the node's config, then write it to ``DATA_DIR/dchat.toml``.

    Raises:
        ConfigError: the file exists already, or ``text`` is not a valid config.
    """
    path = data_dir / "dchat.toml"
    if path.exists():
        raise ConfigError(f"{path} exists already")
    table = tomllib.loads(text)["node"]
    config = load_config(data_dir, config_file=Path("/nonexistent"), overrides=table, environ={})
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, text.encode())
    return config
