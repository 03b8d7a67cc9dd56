"""The checks behind ``atlasd doctor``: each looks at one thing and says ok, warn or fail.

Every check returns :class:`Check` values and never raises for what it finds:
a problem is a ``fail`` (or ``warn``) line with the fix an operator would type.
The daemon, when it answers, is asked through the client; the remote is asked
through the sync's own remote (``GET ingest/status``, which also gives its
clock); the database is opened read-only, as ``verify`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from atlasd.client import Client
from atlasd.client.results import StatusReport
from atlasd.client.spool import SPOOL_SUFFIX
from atlasd.config import Config, ConfigError, check_ingest_url, resolve_config
from atlasd.errors import AtlasdError
from atlasd.eventlog.archive import ArchiveRecord, archive_dir, read_records, segment_name
from atlasd.eventlog.capacity import cap_state
from atlasd.eventlog.datadir import db_bytes, db_path
from atlasd.eventlog.sql import connect
from atlasd.sync.origin_key import existing_origin_key
from atlasd.sync.remote import ConvexRemote, RemoteAuthError, RemoteError, RemoteProbe

__all__ = [
    "Check",
    "Level",
    "check_archive",
    "check_config",
    "check_data_dir",
    "check_database",
    "check_disk",
    "check_remote",
    "check_socket",
    "check_spool",
    "check_sync",
    "check_systemd",
    "run_checks",
    "skew_check",
]

Level = Literal["ok", "warn", "fail"]

#: Settings given as environment variables whose values are a fixed set.
_CHOICES = {
    "ATLASD_LOG_LEVEL": ("debug", "info", "warning", "error"),
    "ATLASD_SYNCHRONOUS": ("FULL", "NORMAL"),
}
#: Free space below which the disk is a warning, and a failure.
_DISK_WARN = 1 << 30
_DISK_FAIL = 100 << 20
#: Share of the database size cap at which doctor warns, and fails.
#: A spool file older than this while the daemon runs is stuck.
_SPOOL_STUCK_S = 60.0
#: Pending events older than this are a lag worth a warning.
_LAG_WARN_MS = 3_600_000
#: Clock difference with the remote worth a warning, and a failure.
_SKEW_WARN_S = 30.0
_SKEW_FAIL_S = 300.0
#: Pages quick_check looks at before it reports (bounds its output, not its work).
_QUICK_CHECK_ERRORS = 10
_TIMEOUT_S = 5.0


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the report."""

    name: str
    level: Level
    message: str
    fix: str | None = None


def run_checks(env: Mapping[str, str] | None = None, config_file: str | None = None) -> list[Check]:
    """Every check, in the order an operator would look."""
    env = os.environ if env is None else env
    checks, config = check_config(env, config_file)
    if config is None:
        return checks
    checks += check_data_dir(config)
    status: StatusReport | None = None
    socket_checks, status = check_socket(config)
    checks += socket_checks
    checks += check_disk(config, status)
    checks += check_database(config)
    checks += check_archive(config)
    checks += check_sync(status)
    checks += check_remote(config, status)
    checks += check_spool(config, daemon_running=status is not None)
    checks += check_systemd()
    return checks


# -- configuration -----------------------------------------------------------


def check_config(
    env: Mapping[str, str], config_file: str | None
) -> tuple[list[Check], Config | None]:
    checks: list[Check] = []
    for var, choices in _CHOICES.items():
        value = env.get(var)
        if value and value not in choices:
            checks.append(
                Check(
                    name="config",
                    level="fail",
                    message=f"{var}={value!r} is not one of {', '.join(choices)}",
                    fix=f"export {var}={choices[0]}  (or unset it)",
                )
            )
    convex = env.get("CONVEX_URL", "")
    if ".convex.site" in convex:
        checks.append(
            Check(
                name="config",
                level="fail",
                message=f"CONVEX_URL is the HTTP actions URL ({convex}), not the deployment URL",
                fix="export CONVEX_URL=https://NAME.convex.cloud  (the ingest URL is derived)",
            )
        )
    if checks:
        return checks, None
    try:
        config = resolve_config(env=env, config_file=config_file)
    except ConfigError as exc:
        return [
            Check(
                name="config",
                level="fail",
                message=str(exc),
                fix="correct the setting named above (atlasd serve refuses it too)",
            )
        ], None
    sync = config.sync
    if sync.ingest_url and sync.token is None:
        checks.append(
            Check(
                name="config",
                level="fail",
                message=f"sync goes to {sync.ingest_url} but no ingest token is set",
                fix="export ATLASD_INGEST_TOKEN=... or --token-file FILE "
                "(systemd: LoadCredential=ingest-token:...)",
            )
        )
    elif sync.token is not None and not sync.ingest_url:
        checks.append(
            Check(
                name="config",
                level="warn",
                message="an ingest token is set but no Convex URL: sync is disabled",
                fix="export CONVEX_URL=https://NAME.convex.cloud",
            )
        )
    if sync.ingest_url and not _acceptable_url(sync.ingest_url):
        checks.append(
            Check(
                name="config",
                level="fail",
                message=f"the ingest URL {sync.ingest_url} is not https (the token would "
                "travel in clear)",
                fix="use the https:// deployment URL; http:// only for a loopback address",
            )
        )
    if not checks:
        where = f"sync to {sync.ingest_url}" if sync.ingest_url else "offline (sync disabled)"
        checks.append(Check(name="config", level="ok", message=where))
    return checks, config


def _acceptable_url(url: str) -> bool:
    """The configuration's own rule (https, or http to loopback; no credentials)."""
    try:
        check_ingest_url(url)
    except ConfigError:
        return False
    return True


# -- files -------------------------------------------------------------------


def check_data_dir(config: Config) -> list[Check]:
    data_dir = config.data_dir
    try:
        info = os.stat(data_dir)
    except FileNotFoundError:
        return [
            Check(
                name="data_dir",
                level="warn",
                message=f"{data_dir} does not exist yet",
                fix="it is made when the daemon first starts: atlasd serve",
            )
        ]
    except OSError as exc:
        return [Check(name="data_dir", level="fail", message=f"{data_dir}: {exc.strerror}")]
    checks: list[Check] = []
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        checks.append(
            Check(
                name="data_dir",
                level="fail",
                message=f"{data_dir} is writable by other users (mode {mode:04o})",
                fix=f"chmod 700 {data_dir}",
            )
        )
    elif mode & 0o007:
        checks.append(
            Check(
                name="data_dir",
                level="warn",
                message=f"{data_dir} is readable by other users (mode {mode:04o})",
                fix=f"chmod 700 {data_dir}",
            )
        )
    euid = os.geteuid()
    if info.st_uid != euid and euid != 0:
        checks.append(
            Check(
                name="data_dir",
                level="warn",
                message=f"{data_dir} belongs to uid {info.st_uid}, not to you (uid {euid})",
                fix="run doctor as the daemon's user (sudo -u atlasd atlasd doctor)",
            )
        )
    db = db_path(data_dir)
    try:
        db_mode = stat.S_IMODE(os.stat(db).st_mode)
    except OSError:
        db_mode = 0
    if db_mode & 0o077:
        checks.append(
            Check(
                name="data_dir",
                level="warn",
                message=f"{db} is readable by other users (mode {db_mode:04o})",
                fix=f"chmod 600 {db}",
            )
        )
    if not checks:
        checks.append(Check(name="data_dir", level="ok", message=f"{data_dir} (mode {mode:04o})"))
    return checks


def check_socket(config: Config) -> tuple[list[Check], StatusReport | None]:
    path = config.socket
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return [
            Check(
                name="socket",
                level="fail",
                message=f"no socket at {path}: the daemon is not running",
                fix="start it: atlasd serve (or systemctl start atlasd)",
            )
        ], None
    except OSError as exc:
        return [Check(name="socket", level="fail", message=f"{path}: {exc.strerror}")], None
    if not stat.S_ISSOCK(info.st_mode):
        return [
            Check(
                name="socket",
                level="fail",
                message=f"{path} is not a socket",
                fix=f"remove it and restart the daemon: rm {path}",
            )
        ], None
    if info.st_uid not in (os.geteuid(), 0):
        return [
            Check(
                name="socket",
                level="fail",
                message=f"{path} belongs to uid {info.st_uid}: not your daemon",
                fix="check who created it; point ATLASD_SOCKET at your daemon's socket",
            )
        ], None
    try:
        with Client(path, spool=False, connect_timeout=_TIMEOUT_S) as client:
            pong = client.ping()
            status = client.status()
    except AtlasdError as exc:
        return [
            Check(
                name="socket",
                level="fail",
                message=f"{path}: {exc.message}",
                fix="restart the daemon; its log says why it does not answer",
            )
        ], None
    return [
        Check(
            name="socket",
            level="ok",
            message=f"daemon {pong.version} answers on {path} (last_seq {status.last_seq})",
        )
    ], status


def check_disk(config: Config, status: StatusReport | None) -> list[Check]:
    where = config.data_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    usage = shutil.disk_usage(where)
    checks: list[Check] = []
    free = f"{usage.free / (1 << 30):.1f} GiB free on {where}"
    if usage.free < _DISK_FAIL:
        checks.append(
            Check(name="disk", level="fail", message=free, fix="free space on that filesystem")
        )
    elif usage.free < _DISK_WARN:
        checks.append(
            Check(name="disk", level="warn", message=free, fix="free space on that filesystem")
        )
    cap = config.max_db_bytes
    if cap is not None:
        size = status.db_bytes if status is not None else db_bytes(db_path(config.data_dir))
        state = cap_state(size, cap)
        text = f"database {size} bytes, {state.share:.0%} of its cap {cap}"
        if state.level == "fail":
            checks.append(
                Check(
                    name="disk",
                    level="fail",
                    message=text,
                    fix="raise max_db_bytes or archive old events (atlasd compact)",
                )
            )
        elif state.level == "warn":
            checks.append(
                Check(
                    name="disk",
                    level="warn",
                    message=text,
                    fix="raise max_db_bytes or archive old events (atlasd compact) soon",
                )
            )
    if not checks:
        checks.append(Check(name="disk", level="ok", message=free))
    return checks


def check_database(config: Config) -> list[Check]:
    db = db_path(config.data_dir)
    if not db.exists():
        return [Check(name="database", level="ok", message=f"no database yet at {db}")]
    try:
        conn = connect(db, readonly=True)
        try:
            found = [row[0] for row in conn.execute(f"PRAGMA quick_check({_QUICK_CHECK_ERRORS})")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        found = [str(exc)]
    if found == ["ok"]:
        return [Check(name="database", level="ok", message=f"{db}: quick_check ok")]
    return [
        Check(
            name="database",
            level="fail",
            message=f"{db}: {'; '.join(found)}",
            fix="stop the daemon, restore the last backup (atlasd backup), then atlasd verify",
        )
    ]


def check_archive(config: Config) -> list[Check]:
    """The archive segments: the directory's owner and mode, and every recorded
    segment present, a plain file of ours, private, with its recorded size and SHA-256."""
    directory = archive_dir(config.data_dir)
    db = db_path(config.data_dir)
    records: list[ArchiveRecord] = []
    incremental = True
    if db.exists():
        try:
            conn = connect(db, readonly=True)
            try:
                with contextlib.suppress(sqlite3.OperationalError):  # a log never compacted
                    records = read_records(conn)
                incremental = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return [Check(name="archive", level="fail", message=f"cannot read records: {exc}")]
    checks: list[Check] = []
    if config.retention.enabled and db.exists() and not incremental:
        checks.append(
            Check(
                name="archive",
                level="warn",
                message="the database predates incremental auto-vacuum: compaction frees"
                " pages for reuse but the file does not shrink",
                fix="stop the daemon and run atlasd compact once",
            )
        )
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        if records:
            return [
                Check(
                    name="archive",
                    level="fail",
                    message=f"{directory} is missing; {len(records)} segments are recorded",
                    fix="restore the archive directory from the backup (atlasd restore)",
                )
            ]
        return checks or [Check(name="archive", level="ok", message="nothing archived yet")]
    except OSError as exc:
        return [Check(name="archive", level="fail", message=f"{directory}: {exc.strerror}")]
    if not stat.S_ISDIR(info.st_mode):
        return [Check(name="archive", level="fail", message=f"{directory} is not a directory")]
    euid = os.geteuid()
    if info.st_uid != os.stat(config.data_dir).st_uid:
        checks.append(
            Check(
                name="archive",
                level="fail",
                message=f"{directory} belongs to uid {info.st_uid}, not to the data dir's owner",
                fix=f"chown -R --reference={config.data_dir} {directory}",
            )
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        checks.append(
            Check(
                name="archive",
                level="fail" if mode & 0o022 else "warn",
                message=f"{directory} is open to other users (mode {mode:04o})",
                fix=f"chmod 700 {directory}",
            )
        )
    bad = [problem for record in records if (problem := _segment_problem(directory, record))]
    for problem in bad[:_QUICK_CHECK_ERRORS]:
        checks.append(
            Check(
                name="archive",
                level="fail",
                message=problem,
                fix="stop the daemon, atlasd verify, restore the segment from a backup",
            )
        )
    loose = [
        entry.name
        for entry in directory.iterdir()
        if entry.name.startswith("seg-") and entry.name not in {r.file for r in records}
    ]
    if loose:
        checks.append(
            Check(
                name="archive",
                level="warn",
                message=f"{len(loose)} segment files have no record (say {loose[0]}): an"
                " interrupted compaction's, or another database's",
                fix="the next compaction removes its own leftover; move the others away",
            )
        )
    if info.st_uid != euid and euid != 0:
        checks.append(
            Check(
                name="archive",
                level="warn",
                message=f"{directory} belongs to uid {info.st_uid}, not to you (uid {euid})",
                fix="run doctor as the daemon's user (sudo -u atlasd atlasd doctor)",
            )
        )
    if not checks:
        size = sum(record.bytes for record in records)
        checks.append(
            Check(
                name="archive",
                level="ok",
                message=f"{len(records)} segments, {size:,} bytes, checksums match",
            )
        )
    return checks


def _segment_problem(directory: Path, record: ArchiveRecord) -> str | None:
    """What is wrong with one recorded segment (None: nothing)."""
    expected = segment_name(record.first_seq, record.last_seq)
    if record.file != expected:
        return (
            f"the record of seqs {record.first_seq}..{record.last_seq} names the file"
            f" {record.file[:80]!r}, not {expected}"
        )
    path = directory / record.file
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a plain file"
        if stat.S_IMODE(info.st_mode) & 0o077:
            return f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o})"
        if info.st_size != record.bytes:  # a wrong size needs no hashing (a huge file)
            return f"{path} does not match its record (size or SHA-256)"
        digest = hashlib.sha256()
        # no link followed, no FIFO waited on: the file lstat saw
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return f"{path} is not a plain file"
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if digest.hexdigest() != record.sha256:
        return f"{path} does not match its record (size or SHA-256)"
    return None


# -- sync --------------------------------------------------------------------


def check_sync(status: StatusReport | None) -> list[Check]:
    if status is None:
        return [Check(name="sync", level="warn", message="daemon not reachable: state unknown")]
    sync = status.sync
    checks: list[Check] = []
    if sync.state == "disabled":
        checks.append(Check(name="sync", level="ok", message="disabled (offline)"))
    elif sync.state == "auth_error":
        checks.append(
            Check(
                name="sync",
                level="fail",
                message=f"the remote refuses the token: {sync.last_error}",
                fix="set the deployment's ATLASD_INGEST_TOKEN and the daemon's to the same value",
            )
        )
    else:
        lag = _lag(sync.oldest_pending_ms)
        text = f"{sync.state}, {sync.pending or 0} pending" + (f", oldest {lag}" if lag else "")
        if sync.state == "backoff":
            checks.append(
                Check(
                    name="sync",
                    level="warn",
                    message=f"{text}; last error: {sync.last_error}",
                    fix="atlasd sync --now retries at once",
                )
            )
        elif (
            sync.oldest_pending_ms is not None
            and time.time() * 1000 - sync.oldest_pending_ms > _LAG_WARN_MS
        ):
            checks.append(Check(name="sync", level="warn", message=text))
        else:
            checks.append(Check(name="sync", level="ok", message=text))
    if sync.rejected:
        checks.append(
            Check(
                name="quarantine",
                level="warn",
                message=f"{sync.rejected} events refused by the remote (atlasd status: reasons)",
                fix="fix the cause, then: atlasd sync --retry-rejected",
            )
        )
    return checks


def _lag(oldest_ms: int | None) -> str:
    if oldest_ms is None:
        return ""
    seconds = max(0, int(time.time() - oldest_ms / 1000))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def check_remote(config: Config, status: StatusReport | None) -> list[Check]:
    sync = config.sync
    if not sync.ingest_url or sync.token is None:
        return []
    url, token = sync.ingest_url, sync.token.reveal()
    origin = status.origin if status is not None else _stored_origin(config)
    try:
        key = None if sync.origin_key_file is None else existing_origin_key(sync.origin_key_file)
    except ConfigError as exc:
        fix = "restore DATA_DIR/origin-key from a backup, or re-key the origin (docs/security.md)"
        return [Check(name="remote", level="fail", message=str(exc), fix=fix)]

    async def probe() -> tuple[float, float, RemoteProbe]:
        async with ConvexRemote(url, token, _TIMEOUT_S, origin_key=key) as remote:
            sent = time.time()
            found = await remote.probe(origin or "")
            return sent, time.time(), found

    try:
        sent, received, found = asyncio.run(probe())
    except RemoteAuthError as exc:
        if "origin_key" in exc.message:
            return [
                Check(
                    name="remote",
                    level="fail",
                    message=f"{sync.ingest_url} binds this origin to another origin key",
                    fix="re-key: npx convex run ingest:forgetOriginKey "
                    '\'{"origin": "ORIGIN"}\' (docs/security.md)',
                )
            ]
        return [
            Check(
                name="remote",
                level="fail",
                message=f"{sync.ingest_url} refuses the token ({exc.message})",
                fix="npx convex env set ATLASD_INGEST_TOKEN to the daemon's token (or the reverse)",
            )
        ]
    except RemoteError as exc:
        return [
            Check(
                name="remote",
                level="fail",
                message=f"{sync.ingest_url} unreachable: {exc.describe()}",
                fix="check the URL and the network; the daemon keeps events until it answers",
            )
        ]
    checks = [
        Check(
            name="remote",
            level="ok",
            message=f"{sync.ingest_url} accepts the token; it holds up to seq "
            f"{found.status.high_water} of this origin",
        )
    ]
    if found.server_time is not None:
        checks.append(skew_check((sent + received) / 2, found.server_time))
    return checks


def skew_check(local: float, remote: float) -> Check:
    """The clock check: ``local`` and ``remote`` seconds since the epoch, same moment."""
    skew = local - remote
    text = f"this clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the remote's"
    fix = "enable time sync: timedatectl set-ntp true"
    if abs(skew) >= _SKEW_FAIL_S:
        return Check(name="clock", level="fail", message=text, fix=fix)
    if abs(skew) >= _SKEW_WARN_S:
        return Check(name="clock", level="warn", message=text, fix=fix)
    return Check(name="clock", level="ok", message=f"within {_SKEW_WARN_S:.0f} s of the remote's")


def _stored_origin(config: Config) -> str | None:
    db = db_path(config.data_dir)
    if not db.exists():
        return None
    try:
        conn = connect(db, readonly=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


# -- spool and service -------------------------------------------------------


def check_spool(config: Config, *, daemon_running: bool) -> list[Check]:
    spool = config.spool_dir
    if not spool.is_dir():
        return [Check(name="spool", level="ok", message="no spool directory yet")]
    now = time.time()
    waiting = [p for p in spool.glob(f"*{SPOOL_SUFFIX}") if p.is_file() and not p.is_symlink()]
    stuck = [p for p in waiting if now - p.stat().st_mtime > _SPOOL_STUCK_S]
    rejected_dir = spool / "rejected"
    rejected = (
        [p for p in rejected_dir.iterdir() if not p.name.endswith(".reason")]
        if rejected_dir.is_dir()
        else []
    )
    checks: list[Check] = []
    if stuck and daemon_running:
        checks.append(
            Check(
                name="spool",
                level="warn",
                message=f"{len(stuck)} spool files waiting over {_SPOOL_STUCK_S:.0f} s in {spool}",
                fix="the daemon should ingest them: check its log (spool_* lines)",
            )
        )
    elif waiting and not daemon_running:
        checks.append(
            Check(
                name="spool",
                level="warn",
                message=f"{len(waiting)} spool files wait for the daemon in {spool}",
                fix="start the daemon: they are appended at start-up",
            )
        )
    if rejected:
        checks.append(
            Check(
                name="spool",
                level="warn",
                message=f"{len(rejected)} spool files were refused ({rejected_dir}, reasons in "
                "*.reason)",
                fix="fix each file and move it back into the spool directory",
            )
        )
    if not checks:
        checks.append(Check(name="spool", level="ok", message=f"{len(waiting)} files waiting"))
    return checks


def check_systemd(unit: str = "atlasd.service") -> list[Check]:
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return [Check(name="systemd", level="ok", message="not under systemd (skipped)")]
    scope = [] if os.geteuid() == 0 else ["--user"]
    try:
        done = subprocess.run(
            ["systemctl", *scope, "show", unit, "--property=ActiveState,SubState,LoadState"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check(name="systemd", level="warn", message=f"systemctl failed: {exc}")]
    props = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if props.get("LoadState") != "loaded":
        return [Check(name="systemd", level="ok", message=f"{unit} is not installed (skipped)")]
    state = f"{props.get('ActiveState')}/{props.get('SubState')}"
    if props.get("ActiveState") == "active":
        return [Check(name="systemd", level="ok", message=f"{unit} {state}")]
    if props.get("ActiveState") == "failed":
        return [
            Check(
                name="systemd",
                level="fail",
                message=f"{unit} {state}",
                fix=f"journalctl {' '.join(scope)} -u {unit} -n 50; systemctl {' '.join(scope)} "
                f"restart {unit}",
            )
        ]
    return [
        Check(
            name="systemd",
            level="warn",
            message=f"{unit} {state}",
            fix=f"systemctl {' '.join(scope)} start {unit}".replace("  ", " "),
        )
    ]
