"""The daemon's configuration: frozen Structs with documented defaults.

Everything is resolved in :func:`resolve_config`, merging in increasing
precedence::

    defaults  <  TOML file (--config FILE, or ATLASD_CONFIG)  <  environment  <  flags

Environment variables (the documented names first, see docs/protocol.md):

=====================  =====================================================
``ATLASD_SOCKET``      socket path
``ATLASD_DATA_DIR``    data dir (SQLite file, spool)
``CONVEX_URL``         deployment URL; the ingest URL is derived from it
``ATLASD_INGEST_URL``  the ingest URL, whole (wins over ``CONVEX_URL``)
``ATLASD_INGEST_TOKEN`` the ingest token
``ATLASD_CONFIG``      TOML file read when ``--config`` is not given
``ATLASD_LOG_LEVEL``   ``debug``, ``info``, ``warning`` or ``error``
``ATLASD_SOCKET_GROUP`` group (name or gid) given access to the socket (0660)
``ATLASD_SYNCHRONOUS`` SQLite ``synchronous``: ``FULL`` (default) or ``NORMAL``
``ATLASD_PACKS_DIR``   the operator's pack files (docs/views.md "Operator packs")
=====================  =====================================================

The TOML file holds the :class:`Config` field names at top level, a
``[retention]`` table with the :class:`RetentionConfig` names, and a
``[sync]`` table with the :class:`SyncConfig` names, plus two input-only keys
there: ``convex_url`` (derived into ``ingest_url``) and ``token_file``. The
token itself is never read from the TOML file, so config files can be shared.

Token sources, in increasing precedence: the systemd credential
``$CREDENTIALS_DIRECTORY/ingest-token`` (``LoadCredential=``), ``sync.token_file``
in the TOML file, ``ATLASD_INGEST_TOKEN``, ``--token-file``. The token is held
in a :class:`Secret`, whose repr is ``'***'``.

Error handling: every problem (unreadable file, bad TOML, unknown key, wrong
type, unreadable token file) raises :class:`ConfigError` with a message naming
the source; ``atlasd serve`` exits 2 on it. An ingest URL must be ``https://``,
or ``http://`` to a loopback address only (the token would otherwise cross
the network in clear), and must not carry credentials (``user:pass@``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from atlasd.packs.registry import default_packs_dir
from atlasd.redact import Redactor

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "Config",
    "ConfigError",
    "RetentionConfig",
    "Secret",
    "SyncConfig",
    "check_ingest_url",
    "default_data_dir",
    "default_packs_dir",
    "default_socket_path",
    "derive_ingest_url",
    "parse_size",
    "resolve_config",
    "resolve_socket_path",
]

MiB = 1024 * 1024
#: The longest request line (and spool line) unless configured otherwise.
DEFAULT_MAX_LINE_BYTES = 2 * MiB
#: The origin key's file name in the data dir (atlasd/sync/origin_key.py).
ORIGIN_KEY_FILE = "origin-key"

_Positive = Annotated[int, msgspec.Meta(ge=1)]
_PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the culprit."""


class Secret:
    """A string that never shows in ``repr``/``str`` (logs, status, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SyncConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The sync worker's part. Sync is enabled when ``ingest_url`` is set."""

    #: Where batches are POSTed; ``None``: sync disabled (fully offline).
    ingest_url: str | None = None
    #: Bearer token for the ingest endpoint.
    token: Secret | None = None
    #: Events per ingest call; must fit Convex's per-transaction limits
    #: (the remote's default, docs/convex.md "The largest safe batch").
    batch_max_events: _Positive = 450
    #: Encoded bytes per ingest call (the remote's default body bound).
    batch_max_bytes: _Positive = 2 * MiB
    #: Wait this long after an append for more to batch before sending.
    linger_ms: Annotated[int, msgspec.Meta(ge=0)] = 50
    #: Poll the remote at least this often even without appends.
    interval_s: _PositiveFloat = 30.0
    #: First retry delay after a transient failure; doubles up to the cap.
    backoff_base_s: _PositiveFloat = 1.0
    backoff_cap_s: _PositiveFloat = 60.0
    #: Retry delay after a 401/403 (the token is wrong until someone fixes it).
    auth_retry_s: _PositiveFloat = 300.0
    #: One HTTP request's timeout.
    timeout_s: _PositiveFloat = 30.0
    #: The origin key file (made on first use); ``None``: no key is sent.
    origin_key_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.ingest_url is not None


class RetentionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What moves out of the live table (docs/eventlog.md, "Retention").

    Events older than ``archive_after_days``, or the oldest ones while the
    database is larger than ``archive_past_bytes`` (and, when sync is enabled,
    only synced ones) move into compressed archive segments under
    ``DATA_DIR/archive/``: by ``atlasd compact``, and by the daemon itself
    every ``compact_interval_s`` and when the size cap's alert is reached.
    Both None: retention off.
    """

    #: Archive events recorded more than this many days ago.
    archive_after_days: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: Archive the oldest events while the database's pages in use exceed this many
    #: bytes (an integer, or a string with a unit: ``"512MiB"``, ``"2GB"``).
    archive_past_bytes: _Positive | None = None
    #: Events per archive segment.
    segment_events: _Positive = 5_000
    #: How often the daemon compacts by itself (seconds).
    compact_interval_s: _PositiveFloat = 3600.0

    @property
    def enabled(self) -> bool:
        return self.archive_after_days is not None or self.archive_past_bytes is not None


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``atlasd serve`` needs; components get their part passed in."""

    #: The Unix socket the daemon listens on.
    socket: Path
    #: Holds the SQLite file and ``spool/``.
    data_dir: Path
    #: The operator's pack files (``*.json``), loaded after the built-in packs; a
    #: missing directory means none.
    packs_dir: Path | None = None
    #: SQLite ``synchronous``; FULL makes every acknowledged append durable.
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    #: Refuse appends (``unavailable``) once the database grows past this; None: no cap.
    max_db_bytes: _Positive | None = None
    #: Group (name or gid) allowed on the socket; the socket is then mode 0660.
    socket_group: str | int | None = None
    #: Peer uids allowed besides the daemon's own uid and root.
    allowed_uids: tuple[int, ...] = ()
    #: Peer gids allowed (primary or supplementary), besides ``socket_group``.
    allowed_gids: tuple[int, ...] = ()
    #: Connections served at once; more are told ``unavailable`` and closed.
    max_connections: _Positive = 1024
    #: Longest request line; longer ones get ``too_large`` and a close.
    max_line_bytes: _Positive = DEFAULT_MAX_LINE_BYTES
    #: A connection with no complete request line for this long while it has nothing
    #: running or unanswered (idle, or a partial line trickling in) is closed.
    #: Streams (``subscribe``, ``watch``) are exempt.
    idle_timeout_s: _PositiveFloat = 60.0
    #: Events queued per subscriber before it is told ``slow_consumer``.
    subscriber_buffer: _Positive = 10_000
    #: A watched query is re-run at most once per this many ms.
    watch_coalesce_ms: Annotated[int, msgspec.Meta(ge=0)] = 50
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: Ingest files dropped into ``DATA_DIR/spool/``.
    spool_enabled: bool = True
    retention: RetentionConfig = RetentionConfig()
    sync: SyncConfig = SyncConfig()

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """$ATLASD_DATA_DIR, /var/lib/atlasd as root, else the XDG state dir (docs/protocol.md).

    ``env`` defaults to ``os.environ`` (the config resolver passes its own).
    """
    env = os.environ if env is None else env
    explicit = env.get("ATLASD_DATA_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/atlasd")
    state = env.get("XDG_STATE_HOME")
    base = Path(state) if state else Path.home() / ".local" / "state"
    return base / "atlasd"


def default_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """Runtime dir, else /run as root, else a 0700 dir in /tmp (docs/protocol.md)."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "atlasd" / "atlasd.sock"
    if os.geteuid() == 0:
        return Path("/run/atlasd/atlasd.sock")
    return Path(f"/tmp/atlasd-{os.getuid()}/atlasd.sock")


def resolve_socket_path(
    flag: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The socket a client should use: ``--socket``, else ``ATLASD_SOCKET``, else the default."""
    env = os.environ if env is None else env
    if flag:
        return Path(flag)
    if env.get("ATLASD_SOCKET"):
        return Path(env["ATLASD_SOCKET"])
    return default_socket_path(env)


def derive_ingest_url(convex_url: str) -> str:
    """``https://NAME.convex.cloud`` -> ``https://NAME.convex.site/atlasd/ingest``.

    Any other URL (a self-hosted backend) gets ``/http/atlasd/ingest``, the
    path under which the open-source backend serves HTTP actions.
    """
    parts = urlsplit(convex_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"CONVEX_URL is not an http(s) URL: {_shown(convex_url)!r}")
    host = parts.netloc
    if host.endswith(".convex.cloud"):
        site = host[: -len(".convex.cloud")] + ".convex.site"
        return f"{parts.scheme}://{site}/atlasd/ingest"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}/http/atlasd/ingest"


#: Masks the credentials of any URL (no secret is known yet while the config is read).
_without_credentials = Redactor(())


def _shown(url: str) -> str:
    """``url`` as it may appear in a message: without credentials."""
    return _without_credentials(url)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_ingest_url(url: str) -> str:
    """``url`` when it is safe to send the token to, else :class:`ConfigError`.

    ``https://`` anywhere; ``http://`` only to a loopback address (``localhost``,
    127.0.0.0/8, ``::1``): in clear over any other network the token and the
    origin key could be read on the way. Credentials in the URL are refused,
    as they would show in logs and ``status``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the ingest URL is not an http(s) URL: {_shown(url)!r}")
    if "@" in parts.netloc:
        raise ConfigError(
            "the ingest URL must not carry credentials (user:password@); "
            "give the token with token_file, ATLASD_INGEST_TOKEN or --token-file"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"the ingest URL {url!r} is plain http to a non-loopback host; "
            "use https (http is accepted for localhost, 127.0.0.0/8 and ::1 only)"
        )
    return url.strip()


# Environment variable -> (Config field, or "sync.<field>").
_ENV_FIELDS = {
    "ATLASD_SOCKET": "socket",
    "ATLASD_DATA_DIR": "data_dir",
    "ATLASD_LOG_LEVEL": "log_level",
    "ATLASD_SOCKET_GROUP": "socket_group",
    "ATLASD_SYNCHRONOUS": "synchronous",
    "ATLASD_PACKS_DIR": "packs_dir",
    "ATLASD_INGEST_URL": "sync.ingest_url",
    "CONVEX_URL": "sync.convex_url",
}


def resolve_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Config:
    """Merge defaults < TOML file < environment < flags into one :class:`Config`.

    ``flags`` uses the field names (``"sync.<name>"`` for the sync part) plus
    ``token_file``; ``None`` values count as not given. ``config_file``
    defaults to ``ATLASD_CONFIG``.

    Error handling: raises :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    file_layer: dict[str, Any] = {}
    path = config_file or env.get("ATLASD_CONFIG") or None
    if path:
        file_layer = _read_toml(Path(path))
    env_layer = {
        name: env[var] for var, name in _ENV_FIELDS.items() if env.get(var) not in (None, "")
    }

    merged: dict[str, Any] = {}
    sync: dict[str, Any] = {}
    token: Secret | None = _credential_token(env)
    for source, layer in (
        ("config file", _flatten(file_layer)),
        ("environment", env_layer),
        ("flags", flags),
    ):
        layer = dict(layer)
        token_file = layer.pop("token_file", None) or layer.pop("sync.token_file", None)
        if token_file is not None:
            token = _read_token(Path(token_file), f"{source} token_file")
        url = layer.pop("sync.ingest_url", None)
        convex = layer.pop("sync.convex_url", None)
        if url is not None:
            sync["ingest_url"] = check_ingest_url(str(url))
        elif convex is not None:
            sync["ingest_url"] = check_ingest_url(derive_ingest_url(str(convex)))
        if source == "environment" and env.get("ATLASD_INGEST_TOKEN"):
            token = Secret(env["ATLASD_INGEST_TOKEN"].strip())
        for key, value in layer.items():
            if key.startswith("sync."):
                sync[key[len("sync.") :]] = value
            else:
                merged[key] = value

    merged.setdefault("socket", str(default_socket_path(env)))
    merged.setdefault("data_dir", str(default_data_dir(env)))
    merged.setdefault("packs_dir", str(default_packs_dir(env)))
    retention = merged.get("retention")
    if isinstance(retention, dict) and isinstance(retention.get("archive_past_bytes"), str):
        merged["retention"] = {
            **retention,
            "archive_past_bytes": parse_size(
                retention["archive_past_bytes"], "retention.archive_past_bytes"
            ),
        }
    try:
        sync_config = msgspec.convert(sync, SyncConfig, strict=False, dec_hook=_dec_hook)
        config = msgspec.convert(merged, Config, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    past, cap = config.retention.archive_past_bytes, config.max_db_bytes
    if past is not None and cap is not None and past >= cap:
        raise ConfigError(
            f"invalid configuration: retention.archive_past_bytes ({past}) must be below"
            f" max_db_bytes ({cap}), or the cap refuses appends before retention acts"
        )
    key_file = sync_config.origin_key_file or config.data_dir / ORIGIN_KEY_FILE
    return msgspec.structs.replace(
        config,
        sync=msgspec.structs.replace(sync_config, token=token, origin_key_file=key_file),
    )


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str, setting: str) -> int:
    """``"512MiB"`` -> 536870912: a whole number of bytes with an optional unit (B, kB,
    MB, GB, TB, KiB, MiB, GiB, TiB); a :class:`ConfigError` naming ``setting`` otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ConfigError(
            f"invalid configuration: {setting} = {text[:40]!r} is not a size:"
            " give bytes, or a number with B, kB, MB, GB, KiB, MiB or GiB"
        )
    size = int(float(match.group(1)) * unit)
    if size < 1:
        raise ConfigError(f"invalid configuration: {setting} must be at least 1 byte")
    return size


def _flatten(layer: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in layer.items():
        if key == "sync":
            if not isinstance(value, dict):
                raise ConfigError("config file: [sync] must be a table")
            for sub, sub_value in value.items():
                if sub == "token":
                    raise ConfigError(
                        "config file: the token is not read from the config file; "
                        "use sync.token_file, ATLASD_INGEST_TOKEN or --token-file"
                    )
                flat[f"sync.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _read_token(path: Path, source: str) -> Secret:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the ingest token ({source} {path}): {exc}") from exc
    if not value:
        raise ConfigError(f"the ingest token file is empty ({source} {path})")
    return Secret(value)


def _credential_token(env: Mapping[str, str]) -> Secret | None:
    creds = env.get("CREDENTIALS_DIRECTORY")
    if not creds:
        return None
    path = Path(creds) / "ingest-token"
    if not path.exists():
        return None
    return _read_token(path, "systemd credential")


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Path and isinstance(obj, str):
        if not obj:
            raise ValueError("empty path")
        return Path(obj).expanduser()
    raise NotImplementedError(f"cannot convert {type(obj).__name__} to {type_}")
