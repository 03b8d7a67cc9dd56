"""Configuration: one resolver merging defaults < TOML < environment < flags."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import msgspec
import pytest

from atlasd.config import (
    Config,
    ConfigError,
    Secret,
    default_socket_path,
    derive_ingest_url,
    resolve_config,
)
from atlasd.daemon.log import configure_logging, log_event


def test_defaults_follow_the_contract_and_sync_is_disabled() -> None:
    """With nothing set: contract default paths, FULL sync, sync disabled, spool on."""
    config = resolve_config({}, env={"XDG_RUNTIME_DIR": "/run/user/7", "XDG_STATE_HOME": "/st"})
    assert config.socket == Path("/run/user/7/atlasd/atlasd.sock")
    if os.geteuid() != 0:
        assert config.data_dir == Path("/st/atlasd")
    assert config.synchronous == "FULL"
    assert config.max_connections == 1024
    assert config.max_line_bytes == 2 * 1024 * 1024
    assert config.spool_enabled is True
    assert config.sync.enabled is False


def test_default_socket_without_runtime_dir_depends_on_the_user() -> None:
    """No XDG_RUNTIME_DIR: /run/atlasd as root, else a per-user dir under /tmp."""
    path = default_socket_path({})
    if os.geteuid() == 0:
        assert path == Path("/run/atlasd/atlasd.sock")
    else:
        assert path == Path(f"/tmp/atlasd-{os.getuid()}/atlasd.sock")


def test_precedence_is_defaults_then_file_then_environment_then_flags(tmp_path: Path) -> None:
    """Each layer overrides the one before it, field by field."""
    toml = tmp_path / "c.toml"
    toml.write_text(
        'socket = "/file.sock"\ndata_dir = "/file-data"\nlog_level = "warning"\n'
        "max_connections = 10\n[sync]\nbatch_max_events = 100\n"
    )
    env = {"ATLASD_SOCKET": "/env.sock", "ATLASD_LOG_LEVEL": "error"}
    config = resolve_config({"log_level": "debug"}, env=env, config_file=toml)
    assert config.socket == Path("/env.sock")
    assert config.data_dir == Path("/file-data")
    assert config.log_level == "debug"
    assert config.max_connections == 10
    assert config.sync.batch_max_events == 100


def test_atlasd_config_names_the_file_when_no_flag_does(tmp_path: Path) -> None:
    """ATLASD_CONFIG is read when --config is not given."""
    toml = tmp_path / "c.toml"
    toml.write_text("subscriber_buffer = 7\n")
    assert resolve_config({}, env={"ATLASD_CONFIG": str(toml)}).subscriber_buffer == 7


def test_convex_url_derives_the_ingest_url_and_ingest_url_wins() -> None:
    """CONVEX_URL -> NAME.convex.site/atlasd/ingest; ATLASD_INGEST_URL overrides it."""
    derived = resolve_config({}, env={"CONVEX_URL": "https://happy-fox-1.convex.cloud"})
    assert derived.sync.ingest_url == "https://happy-fox-1.convex.site/atlasd/ingest"
    assert derived.sync.enabled
    both = resolve_config(
        {},
        env={"CONVEX_URL": "https://a.convex.cloud", "ATLASD_INGEST_URL": "http://127.0.0.1:9/x"},
    )
    assert both.sync.ingest_url == "http://127.0.0.1:9/x"
    assert derive_ingest_url("http://127.0.0.1:3210") == "http://127.0.0.1:3210/http/atlasd/ingest"


def test_the_token_comes_from_env_or_file_and_never_shows(tmp_path: Path) -> None:
    """The token is read from ATLASD_INGEST_TOKEN or a file, and repr shows '***'."""
    token_file = tmp_path / "token"
    token_file.write_text("file-secret\n")
    from_env = resolve_config({}, env={"ATLASD_INGEST_TOKEN": "env-secret"})
    from_file = resolve_config(
        {"token_file": str(token_file)}, env={"ATLASD_INGEST_TOKEN": "env-secret"}
    )
    assert from_env.sync.token == Secret("env-secret")
    assert from_file.sync.token is not None
    assert from_file.sync.token.reveal() == "file-secret"
    assert "secret" not in repr(from_file) + str(from_file.sync.token)


def test_the_systemd_credential_is_the_lowest_token_source(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY/ingest-token is used when nothing else gives a token."""
    (tmp_path / "ingest-token").write_text("cred")
    config = resolve_config({}, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.sync.token == Secret("cred")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "ATLASD_INGEST_TOKEN": "env"}
    assert resolve_config({}, env=env).sync.token == Secret("env")


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("max_conections = 5\n", "max_conections"),
        ("max_connections = 0\n", "max_connections"),
        ('log_level = "loud"\n', "log_level"),
        ("[sync]\ntoken = 'x'\n", "token"),
        ("not toml at all [\n", "not valid TOML"),
    ],
)
def test_bad_files_raise_config_error_naming_the_problem(
    tmp_path: Path, toml: str, fragment: str
) -> None:
    """Unknown keys, out-of-range values, a token in the file, bad TOML: ConfigError."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=fragment):
        resolve_config({}, env={}, config_file=path)


def test_a_missing_config_file_or_token_file_is_an_error(tmp_path: Path) -> None:
    """Files named explicitly must exist."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_config({}, env={}, config_file=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="ingest token"):
        resolve_config({"token_file": str(tmp_path / "nope")}, env={})


def test_config_is_frozen() -> None:
    """Components cannot change the configuration they were given."""
    config = resolve_config({}, env={})
    assert isinstance(config, Config)
    with pytest.raises(AttributeError):
        config.max_connections = 1  # type: ignore[misc]


def test_log_lines_get_syslog_priorities_under_journald(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """With JOURNAL_STREAM naming stderr, each line starts with <N>; values are quoted."""
    st = os.fstat(2)
    root = logging.getLogger("atlasd")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        configure_logging("info", env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        logger = logging.getLogger("atlasd.test")
        log_event(logger, logging.WARNING, "slow_thing", path="/a b", n=3)
        log_event(logger, logging.DEBUG, "hidden")
        configure_logging("info", env={})
        log_event(logger, logging.ERROR, "plain")
    finally:
        root.handlers[:], root.level, root.propagate = saved
    err = capfd.readouterr().err.splitlines()
    assert err == ['<4>slow_thing path="/a b" n=3', "plain"]


def _retention(tmp_path: Path, body: str) -> Config:
    path = tmp_path / "retention.toml"
    path.write_text(body)
    return resolve_config({}, env={}, config_file=path)


def test_archive_past_bytes_takes_bytes_or_a_size_with_a_unit(tmp_path: Path) -> None:
    """archive_past_bytes is a whole number of bytes or a size like "512MiB"; either
    turns retention on."""
    assert _retention(tmp_path, "").retention.enabled is False
    as_int = _retention(tmp_path, "[retention]\narchive_past_bytes = 1000\n").retention
    assert as_int.archive_past_bytes == 1000
    assert as_int.enabled is True
    as_text = _retention(tmp_path, '[retention]\narchive_past_bytes = "512MiB"\n').retention
    assert as_text.archive_past_bytes == 512 * 1024 * 1024
    assert _retention(tmp_path, '[retention]\narchive_past_bytes = "2 GB"\n').retention == (
        msgspec.structs.replace(as_text, archive_past_bytes=2_000_000_000)
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('archive_past_bytes = "12XB"', "retention.archive_past_bytes"),
        ('archive_past_bytes = "lots"', "retention.archive_past_bytes"),
        ("archive_past_bytes = 0", "retention.archive_past_bytes"),
        ("archive_past_bytes = -5", "retention.archive_past_bytes"),
        ("archive_past_bytes = true", "retention.archive_past_bytes"),
        ("compact_interval_s = 0", "retention.compact_interval_s"),
        ("archive_after_days = -1", "retention.archive_after_days"),
        ("archive_past_byte = 10", "archive_past_byte"),
    ],
)
def test_a_bad_retention_setting_is_refused_naming_it(
    tmp_path: Path, body: str, named: str
) -> None:
    """Each bad retention value is a ConfigError whose message names the setting."""
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        _retention(tmp_path, f"[retention]\n{body}\n")


def test_archive_past_bytes_must_be_below_the_size_cap(tmp_path: Path) -> None:
    """A byte retention at or above max_db_bytes could never act before appends are
    refused: it is an error naming both settings."""
    with pytest.raises(ConfigError, match=r"archive_past_bytes .* max_db_bytes"):
        _retention(tmp_path, "max_db_bytes = 1000000\n[retention]\narchive_past_bytes = 1000000\n")
    fine = _retention(
        tmp_path, "max_db_bytes = 1000000\n[retention]\narchive_past_bytes = 500000\n"
    )
    assert fine.retention.archive_past_bytes == 500_000
