"""The one error guard of the CLI: each failure's exit code and stderr line, for the
daemon's commands and for ``atlasd remote``'s."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlasd.cli import EXIT_DAEMON_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from atlasd.cli._clientcli import UsageError, guarded
from atlasd.cli.remote import _guarded as remote_guarded
from atlasd.errors import DaemonUnreachable, InvalidValue, Unavailable
from atlasd.remote_read import RemoteReadError, RemoteReadRefused


def _raising(error: BaseException) -> Callable[[], int]:
    def body() -> int:
        raise error

    return body


DAEMON_CASES = [
    (UsageError("--limit must be positive"), EXIT_USAGE, "atlasd query: --limit must be positive"),
    (
        DaemonUnreachable("no daemon answers on /run/a.sock (No such file or directory)"),
        EXIT_UNREACHABLE,
        "atlasd query: no daemon answers on /run/a.sock (No such file or directory)",
    ),
    (
        InvalidValue("filter: unknown column 'x'"),
        EXIT_DAEMON_ERROR,
        "atlasd query: invalid_value: filter: unknown column 'x'",
    ),
    (
        Unavailable("the daemon is stopping"),
        EXIT_DAEMON_ERROR,
        "atlasd query: unavailable: the daemon is stopping",
    ),
    (
        FileNotFoundError(2, "No such file or directory", "/tmp/in.ndjson"),
        EXIT_DAEMON_ERROR,
        "atlasd query: /tmp/in.ndjson: No such file or directory",
    ),
]

REMOTE_CASES = [
    (
        UsageError("set ATLASD_READ_TOKEN to the deployment's read token"),
        EXIT_USAGE,
        "atlasd remote query: set ATLASD_READ_TOKEN to the deployment's read token",
    ),
    (
        RemoteReadRefused("unauthorized: the read token is wrong", "unauthorized"),
        EXIT_DAEMON_ERROR,
        "atlasd remote query: unauthorized: the read token is wrong",
    ),
    (
        RemoteReadError("connection refused by https://x.example"),
        EXIT_UNREACHABLE,
        "atlasd remote query: unreachable: connection refused by https://x.example",
    ),
]


@pytest.mark.parametrize(("error", "code", "line"), DAEMON_CASES)
def test_daemon_commands_print_one_line_and_exit_with_the_errors_code(
    error: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A daemon command's failure: usage 2, unreachable 3, a refusal 1 as ``code: message``."""
    assert guarded("query", _raising(error)) == code
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize(("error", "code", "line"), REMOTE_CASES)
def test_remote_commands_say_unreachable_and_show_refusals_without_a_code(
    error: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``atlasd remote``: a refused read (1) shows the deployment's reason alone, a
    deployment out of reach (3) says ``unreachable:``."""
    assert remote_guarded("query", _raising(error)) == code
    assert capsys.readouterr().err == line + "\n"


def test_a_body_that_succeeds_returns_its_code_and_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The guard passes a normal exit through untouched."""
    assert guarded("status", lambda: EXIT_OK) == EXIT_OK
    assert capsys.readouterr().err == ""
