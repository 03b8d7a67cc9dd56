"""The error tree: every error that crosses the socket has one stable contract code."""

from __future__ import annotations

import pytest

from atlasd import errors
from atlasd.errors import AtlasdError, VersionConflict, error_from_wire

# docs/protocol.md, in its order.
CONTRACT_CODES = [
    "bad_request",
    "too_large",
    "invalid_value",
    "version_conflict",
    "event_id_conflict",
    "forbidden",
    "unavailable",
    "slow_consumer",
    "internal",
]

WIRE_CLASSES = [
    cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type)
    and issubclass(cls, AtlasdError)
    and cls not in (AtlasdError, errors.DaemonUnreachable)
]


def test_each_contract_code_has_exactly_one_error_class() -> None:
    """Every code of the contract is raised by one class, and no class invents a code."""
    codes = sorted(cls.code for cls in WIRE_CLASSES)
    assert codes == sorted(CONTRACT_CODES)


@pytest.mark.parametrize("cls", WIRE_CLASSES, ids=lambda cls: cls.__name__)
def test_an_error_survives_the_round_trip_through_the_wire(cls: type[AtlasdError]) -> None:
    """A failure response rebuilds the same class with its message and extra fields."""
    if cls is VersionConflict:
        sent: AtlasdError = VersionConflict("stream at 3", current_version=3)
    else:
        sent = cls("something went wrong", event_id="e-1")
    wire = sent.to_wire()
    assert wire["code"] == cls.code
    received = error_from_wire(wire)
    assert type(received) is cls
    assert received.message == sent.message
    assert received.to_wire() == wire


def test_an_unknown_code_from_a_newer_daemon_becomes_internal() -> None:
    """Codes this client does not know are not dropped: they arrive as Internal with the text."""
    received = error_from_wire({"code": "from_the_future", "message": "later"})
    assert isinstance(received, errors.Internal)
    assert received.message == "later"


def test_only_transient_errors_are_retryable() -> None:
    """Retry decisions live with the error: unavailable and slow_consumer may succeed later."""
    retryable = {cls.code for cls in WIRE_CLASSES if cls.retryable}
    assert retryable == {"unavailable", "slow_consumer"}
