"""Node configuration: a TOML file, then ``DCHAT_*`` environment variables, then flags.

Precedence (highest first): command-line flags, environment variables
(``DCHAT_ROLE``, ``DCHAT_LISTEN``, ``DCHAT_RELAY``, ``DCHAT_RELAY_NODE``,
``DCHAT_API_LISTEN``, ``DCHAT_POLL_INTERVAL``, ``DCHAT_LOG_LEVEL``, ``DCHAT_DATABASE_URL``),
the TOML file (``<data-dir>/dchat.toml`` or ``--config``), defaults. The passphrase that
unlocks the node's keys never lives in the config: it comes from ``DCHAT_PASSPHRASE`` or a
``--passphrase-file``. ``database_url`` (a SecretStr: never shown) may hold a password.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from dchat_chain.lowlevel import RelayDiscovery
from dchat_core import RelayAddress
from dchat_messaging.bots import BotLimits
from dchat_network import RelayLimits
from dchat_network.lowlevel import ClaimSettings, TokenSettings
from dchat_storage.lowlevel import is_postgres_target

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import ValidationInfo

__all__ = ("NodeConfig", "load_config", "parse_hostport")

Role = Literal["user", "relay", "validator"]
_ENV_FIELDS = (
    "role",
    "listen",
    "relay",
    "relay_node",
    "api_listen",
    "poll_interval",
    "log_level",
    "database_url",
)


def parse_hostport(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (port 0 means any free port).

    Raises:
        ConfigError: not a valid address.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"not a HOST:PORT address: {text!r}")
    return host.strip("[]"), int(port)


class NodeConfig(BaseModel):
    """Validated node configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role = "user"
    data_dir: Path
    listen: str = Field(
        default="127.0.0.1:0", description="relay/validator: link listener; user: API"
    )
    api_listen: str = Field(default="127.0.0.1:0", description="relay/validator: HTTP API address")
    # The API off loopback only when asked, and then only over TLS (api/_serve.py).
    expose_api: bool = False
    api_tls_cert: Path | None = Field(default=None, description="PEM certificate chain")
    api_tls_key: Path | None = Field(default=None, description="PEM private key")
    api_max_body: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3)
    relay: str | None = Field(default=None, description="user: HOST:PORT of the home relay")
    relay_node: str | None = Field(default=None, description="user: pinned relay node id")
    # user: every home relay, [NODEID@]HOST:PORT (``relay``/``relay_node``: a one-entry shorthand)
    relays: tuple[str, ...] = Field(default=(), max_length=8)
    multipath_k: int | None = Field(default=None, ge=1, le=8)  # relays per envelope; None: all
    poll_interval: float = Field(
        default=2.0, gt=0, le=3600, description="user: seconds between retries of failed deliveries"
    )
    unlinkable_sends: bool = Field(
        default=False, description="user: a fresh link and key per deposit (slower, unlinkable)"
    )
    # user: NODEID@HOST:PORT hops; set, they override routes from the directory (relay_discovery)
    onion_relays: tuple[str, ...] = Field(default=(), max_length=64)
    reply_blocks: int = Field(default=3, ge=0, le=8)  # user: reply blocks per contact (§45)
    link_source: str | None = Field(default=None, description="local address links dial from")
    put_auth: Literal["token", "proof"] = "token"  # user: what contacts get (section 41)
    tag_epoch: int = Field(
        default=3600, ge=1, le=7 * 86400, description="user: seconds per rotating mailbox tag"
    )
    cover_traffic: int = Field(default=0, ge=0, le=100_000)  # user: cover bytes/s, 0 off
    stealth_scan_interval: float = Field(default=0, ge=0, le=86400)  # user: s, 0 off (§43)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Validator settings (see _validator_service): peers as NODEID@HOST:PORT, the
    # chain ids the genesis files must declare, and the least time between blocks.
    peers: tuple[str, ...] = Field(default=(), max_length=1024)
    currency_chain: str | None = Field(default=None, max_length=64)
    chat_chain: str | None = Field(default=None, max_length=64)
    # user: @handles' chat chain; relay: where receipt claims go. A validator's data dir
    chat_node: Path | None = None
    chat_genesis: Path | None = None  # default: chat_node's genesis.cbor, trusted on first use
    currency_node: Path | None = None  # user: payments' currency chain (a validator's data dir)
    # user: anchored groups' batching policy (the sequencer commits one range per batch)
    group_anchor_batch: int = Field(default=64, ge=1, le=256)
    group_anchor_interval: float = Field(default=5.0, gt=0, le=3600)
    currency_genesis: Path | None = None  # default: currency_node's genesis, trusted on first use
    block_interval: float = Field(default=1.0, ge=0, le=60)
    # Every this many blocks a validator stores a state snapshot, so a restart
    # replays only the blocks above it (0: never; see dchat_chain.lowlevel.replay_store).
    snapshot_interval: int = Field(default=1000, ge=0, le=1_000_000)
    # Currency validator: probe the relays listed by the chat validator of this data dir.
    probe_directory: Path | None = None
    probe_interval: float = Field(default=5.0, gt=0, le=3600)
    # Guardian recovery: the shortest time lock this node approves as a guardian.
    guardian_min_lock: float = Field(default=7 * 24 * 3600.0, ge=0, le=365 * 24 * 3600.0)
    event_retention: float = Field(default=30 * 86400.0, gt=0)  # seconds; GET /v1/events
    # user/relay: a PostgreSQL URL; the database is there instead of DATA_DIR/node.db.
    database_url: SecretStr | None = None
    tracing_endpoint: str | None = None  # OTLP/HTTP traces URL (docs/operations.md, Tracing)
    tracing_file: Path | None = None  # or: append spans here as JSON lines (relative: data dir)
    relay_limits: RelayLimits = Field(default_factory=RelayLimits)  # [node.relay_limits]
    relay_claims: ClaimSettings = Field(default_factory=ClaimSettings)  # [node.relay_claims]
    relay_tokens: TokenSettings = Field(default_factory=TokenSettings)  # [node.relay_tokens]
    upnp: bool = False  # relay: map the link port on the router by UPnP IGD (docs/operations.md)
    upnp_igd: str | None = None  # relay: the gateway's description URL (else an SSDP search)
    # user: home relays from the chain's directory (cli/_relays.py); true = defaults
    relay_discovery: RelayDiscovery = Field(default_factory=RelayDiscovery)
    bot_limits: BotLimits = Field(default_factory=BotLimits)  # user: [node.bot_limits]

    @field_validator("relay_discovery", mode="before")
    @classmethod
    def _discovery(cls, value: Any) -> Any:
        return RelayDiscovery(enabled=value) if isinstance(value, bool) else value

    @field_validator("listen", "api_listen", "relay")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hostport(value)
        return value

    @field_validator("relays")
    @classmethod
    def _relays(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        unique = len({RelayAddress.parse(t) for t in value}) == len(value)
        if not unique or (value and info.data.get("relay")):
            raise ValueError("distinct [NODEID@]HOST:PORT texts, and no `relay` beside them")
        return value

    @property
    def home_relays(self) -> tuple[RelayAddress, ...]:
        """The home relays: ``relays``, or the one ``relay`` (pinned to ``relay_node``)."""
        one = f"{self.relay_node}@{self.relay}" if self.relay_node else self.relay
        return tuple(RelayAddress.parse(t) for t in (self.relays or ((one,) if one else ())))

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not is_postgres_target(value.get_secret_value()):
            raise ValueError("not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE)")
        if value is not None and info.data.get("role") == "validator":
            raise ValueError("for user and relay nodes; a validator keeps node.db")
        return value


def load_config(
    data_dir: Path,
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> NodeConfig:
    """Merge file, environment and explicit overrides into a :class:`NodeConfig`.

    Raises:
        ConfigError: unreadable TOML or invalid values (the message names the field).
    """
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    path = config_file if config_file is not None else data_dir / "dchat.toml"
    if path.exists():
        try:
            merged.update(tomllib.loads(path.read_text()).get("node", {}))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
    for name in _ENV_FIELDS:
        value = env.get(f"DCHAT_{name.upper()}")
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    merged["data_dir"] = data_dir
    try:
        return NodeConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
