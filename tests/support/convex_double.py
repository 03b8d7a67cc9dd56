"""The Convex double from Python: start it, call it, read back what it holds.

The double (``convex/double/server.ts``) runs the real functions of
``convex/functions`` through convex-test behind a real HTTP server on
127.0.0.1. It is test-only: it answers internal functions on ``/api/*`` and
offers ``POST /_test/reset``.

Use it through the fixtures at the bottom of this module; a conftest imports
them to make them available in its folder::

    from tests.support.convex_double import convex_double, convex_double_session  # noqa: F401

Resource handling: :class:`ConvexDouble` owns one ``node`` process and one
``httpx.Client``. :meth:`ConvexDouble.stop` sends SIGTERM and waits (SIGKILL
after a grace period); the process also exits by itself when its stdin
closes, so it never outlives the Python process that started it.

Error handling: a double that cannot start raises :class:`DoubleError` with
its stderr; a function that throws raises :class:`DoubleError` carrying the
``errorMessage`` and ``errorData`` of Convex's wire format.
"""

from __future__ import annotations

import base64
import os
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import msgspec
import pytest

from atlasd.eventlog.chain import GENESIS_HASH, content_hash
from atlasd.events import Event

__all__ = [
    "CONVEX_DIR",
    "ConvexDouble",
    "DoubleError",
    "convex_double",
    "convex_double_session",
    "envelopes",
]

CONVEX_DIR = Path(__file__).resolve().parents[2] / "convex"
_SERVER = CONVEX_DIR / "double" / "server.ts"
# Loading tsx and compiling the functions takes a few seconds on 2 cores.
_READY_TIMEOUT = 60.0
_STOP_GRACE = 10.0


class DoubleError(RuntimeError):
    """The double failed to start, or a function called through it threw."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


def _from_convex_json(value: Any) -> Any:
    """Convex's JSON wire values as Python values (int64, bytes, special floats)."""
    if isinstance(value, list):
        return [_from_convex_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((name, inner),) = value.items()
            if name == "$integer":
                return struct.unpack("<q", base64.b64decode(inner))[0]
            if name == "$float":
                return struct.unpack("<d", base64.b64decode(inner))[0]
            if name == "$bytes":
                return base64.b64decode(inner)
        return {name: _from_convex_json(item) for name, item in value.items()}
    return value


def envelopes(
    origin: str, events: list[dict[str, Any]], first_seq: int = 1, previous: str = GENESIS_HASH
) -> list[dict[str, Any]]:
    """Complete wire envelopes (docs/eventlog.md) for vector-style events.

    Each input needs ``stream``, ``type``, ``data``, ``event_id`` and
    ``recorded_at``; ``meta`` defaults to ``{}``; ``occurred_at`` is passed on
    when given. ``seq`` counts from
    ``first_seq``, ``version`` per stream, and ``hash`` is the daemon's own
    chain (``atlasd.eventlog.chain``), from ``previous`` (genesis by default),
    which the remote recomputes.
    """
    versions: dict[str, int] = {}
    out = []
    for seq, event in enumerate(events, start=first_seq):
        versions[event["stream"]] = versions.get(event["stream"], 0) + 1
        envelope = {
            "seq": seq,
            "event_id": event["event_id"],
            "stream": event["stream"],
            "version": versions[event["stream"]],
            "type": event["type"],
            "data": event["data"],
            "meta": event.get("meta", {}),
            "recorded_at": event["recorded_at"],
            **({"occurred_at": event["occurred_at"]} if "occurred_at" in event else {}),
            "origin": origin,
        }
        previous = content_hash(previous, msgspec.convert({**envelope, "hash": ""}, Event))
        out.append({**envelope, "hash": previous})
    return out


class ConvexDouble:
    """One running double: ``with ConvexDouble() as double: ...``.

    ``token`` is the ``ATLASD_INGEST_TOKEN`` the double accepts and
    ``read_token`` its ``ATLASD_READ_TOKEN`` (random ones by default);
    ``port`` 0 picks a free port; ``env`` adds environment variables, and
    wins over the tokens (``ATLASD_DOUBLE_VERIFY=1`` checks every fast-path
    lookup of the double against convex-test's own scan).
    """

    def __init__(
        self,
        token: str | None = None,
        port: int = 0,
        env: dict[str, str] | None = None,
        read_token: str | None = None,
    ) -> None:
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.read_token = read_token if read_token is not None else secrets.token_urlsafe(24)
        self._port = port
        self._env = env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------

    @property
    def pid(self) -> int:
        """Process id of the running double."""
        if self._process is None:
            raise DoubleError("the double is not running")
        return self._process.pid

    @property
    def ingest_url(self) -> str:
        """The ingest endpoint, as ``ATLASD_INGEST_URL`` takes it."""
        return f"{self.url}/atlasd/ingest"

    def start(self) -> Self:
        """Start the double and wait for its ``READY`` line."""
        node = shutil.which("node")
        if node is None:
            raise DoubleError("node is not on PATH; the Convex double needs Node.js 20")
        if not (CONVEX_DIR / "node_modules" / "tsx").is_dir():
            raise DoubleError(
                f"{CONVEX_DIR / 'node_modules'} is not installed; run `make test` "
                "or `cd convex && npm ci`"
            )
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process's life
        env = {
            **os.environ,
            "ATLASD_INGEST_TOKEN": self.token,
            "ATLASD_READ_TOKEN": self.read_token,
            **self._env,
        }
        self._process = subprocess.Popen(
            [node, "--import", "tsx", str(_SERVER), "--port", str(self._port), "--watch-stdin"],
            cwd=CONVEX_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            self.url = self._wait_ready(stderr)
        except BaseException:
            self.stop()
            raise
        finally:
            stderr.close()
        self._client = httpx.Client(base_url=self.url, timeout=60.0)
        return self

    def _wait_ready(self, stderr: Any) -> str:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise DoubleError(f"the double printed no READY line in {_READY_TIMEOUT:.0f} s")
                chunk = os.read(process.stdout.fileno(), 1)
                if not chunk:
                    process.wait()
                    stderr.seek(0)
                    detail = stderr.read().decode("utf-8", "replace").strip()
                    raise DoubleError(
                        f"the double exited with {process.returncode} before READY: {detail}"
                    )
                line += chunk
        text = line.decode().strip()
        if not text.startswith("READY http://"):
            raise DoubleError(f"unexpected first line from the double: {text!r}")
        return text.removeprefix("READY ")

    def stop(self) -> None:
        """SIGTERM, then wait; SIGKILL if it does not exit within the grace period."""
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- calls -----------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """An HTTP client with the double's base URL (no token set)."""
        if self._client is None:
            raise DoubleError("the double is not running")
        return self._client

    def _call(self, kind: str, path: str, args: dict[str, Any] | None) -> Any:
        response = self.client.post(
            f"/api/{kind}", json={"path": path, "args": args or {}, "format": "json"}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise DoubleError(body.get("errorMessage", str(body)), body.get("errorData"))
        return _from_convex_json(body["value"])

    def query(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a public or internal query, e.g. ``query("views:builds", {"status": "running"})``."""
        return self._call("query", path, args)

    def mutation(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a public or internal mutation."""
        return self._call("mutation", path, args)

    def action(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a public or internal action."""
        return self._call("action", path, args)

    def reset(self) -> None:
        """Empty every table (test-only)."""
        self.client.post("/_test/reset").raise_for_status()

    # -- the ingest endpoint and readback --------------------------------

    def ingest(
        self, origin: str, events: list[dict[str, Any]], token: str | None = None
    ) -> httpx.Response:
        """POST one batch to the ingest endpoint with the double's token (or ``token``)."""
        return self.client.post(
            "/atlasd/ingest",
            json={"origin": origin, "events": events},
            headers={"Authorization": f"Bearer {token if token is not None else self.token}"},
        )

    def events(self, origin: str, from_seq: int = 0) -> list[dict[str, Any]]:
        """The events the remote holds for ``origin`` after ``from_seq``, in seq order."""
        result: list[dict[str, Any]] = self.query(
            "inspect:events", {"origin": origin, "from_seq": from_seq}
        )
        return result

    def view(self, name: str) -> list[dict[str, Any]]:
        """Every row of a remote view, with exactly the contract's columns."""
        result: list[dict[str, Any]] = self.query("inspect:view", {"name": name})
        return result

    def status(self, origin: str) -> dict[str, Any]:
        """``{"origin", "high_water", "events", "last_ingest_at"}`` of one origin."""
        result: dict[str, Any] = self.query("ingest:status", {"origin": origin})
        return result


# Every conftest that imports the fixture defines its own copy of it; they
# share one double through this count so a session runs a single process.
_shared: ConvexDouble | None = None
_users = 0


@pytest.fixture(scope="session")
def convex_double_session() -> Iterator[ConvexDouble]:
    """One double for the whole session (its tables persist between tests)."""
    global _shared, _users
    if _shared is None:
        _shared = ConvexDouble().start()
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _shared.stop()
            _shared = None


@pytest.fixture
def convex_double(convex_double_session: ConvexDouble) -> ConvexDouble:
    """The session's double, emptied before the test."""
    convex_double_session.reset()
    return convex_double_session
