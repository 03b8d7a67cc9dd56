"""A minimal ingest server speaking the ingest protocol (docs/sync.md), with no Convex logic.

Real HTTP/1.1 on 127.0.0.1 (keep-alive), bearer token check, dedup by
``event_id``, per-origin ``high_water``. Events whose id is in
``reject_ids`` are answered as ``rejected`` (never stored), which lets the
worker's quarantine path be tested without a Convex deployment.

It speaks the remote's protocol as the Convex functions do: an origin is
bound to the first ``X-Atlasd-Origin-Key`` it presents (403 ``origin_key``
for any other key after that), and each event's hash is recomputed from the
previous one of its origin (in the batch or stored) and refused as
``hash_mismatch`` when it differs.

Used in-process by the unit tests (:class:`IngestServer` in a thread) and as a
separate process by the benchmark (``python -m tests.sync.ingest_server``),
which prints ``port=N`` once listening.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from atlasd.eventlog.chain import GENESIS_HASH, content_hash
from atlasd.events import Event

__all__ = ["IngestServer", "IngestState"]


class _Body(msgspec.Struct):
    origin: str
    events: list[msgspec.Raw]


class _Stub(msgspec.Struct):
    event_id: str
    seq: int
    origin: str


_body_decoder = msgspec.json.Decoder(_Body)
_envelope_decoder = msgspec.json.Decoder(Event)
_stub_decoder = msgspec.json.Decoder(_Stub)
_event_decoder = msgspec.json.Decoder(Event)


class _Logged(msgspec.Struct):
    logged_origin: str | None = None


_logged_decoder = msgspec.json.Decoder(_Logged)
#: The header carrying the origin key.
ORIGIN_KEY_HEADER = "X-Atlasd-Origin-Key"


@dataclass
class IngestState:
    """What the server holds; every field guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: event_id -> encoded event, in first-arrival order.
    events: dict[str, bytes] = field(default_factory=dict)
    #: origin -> the seqs stored above its high water.
    above: dict[str, set[int]] = field(default_factory=dict)
    high_water: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    reject_ids: set[str] = field(default_factory=set)
    posts: int = 0
    #: Events per POST, in arrival order.
    batch_sizes: list[int] = field(default_factory=list)
    duplicates: int = 0
    #: origin -> SHA-256 of the key that bound it.
    keys: dict[str, str] = field(default_factory=dict)
    #: (origin, seq) -> the stored event's hash.
    hashes: dict[tuple[str, int], str] = field(default_factory=dict)
    #: Any POST carrying one of these ids is answered 500 (an event that breaks the remote).
    fail_ids: set[str] = field(default_factory=set)
    #: Edits every 200 answer to an ingest POST (a remote that lies).
    tamper: Callable[[dict[str, Any]], Any] | None = None

    def key_allowed(self, origin: str, key: str | None, bind: bool) -> bool:
        """Whether ``key`` may act for ``origin``; with ``bind``, the first key binds it."""
        digest = None if not key else hashlib.sha256(key.encode()).hexdigest()
        with self.lock:
            bound = self.keys.get(origin)
            if bound is None:
                if bind and digest is not None:
                    self.keys[origin] = digest
                return True
            return digest is not None and hmac.compare_digest(bound, digest)

    def _hash_problem(self, origin: str, raw: bytes, batch_hashes: dict[int, str]) -> str | None:
        event = _event_decoder.decode(raw)
        logged = _logged_decoder.decode(raw).logged_origin
        if logged is not None:  # sent under another origin than the one it was hashed with
            event = msgspec.structs.replace(event, origin=logged)
        seq = event.seq
        prev = GENESIS_HASH if seq == 1 else batch_hashes.get(seq - 1)
        if prev is None:
            prev = self.hashes.get((origin, seq - 1))
        batch_hashes[seq] = event.hash
        if prev is None:
            return None  # no predecessor held: cannot be checked
        expected = content_hash(prev, event)
        return None if expected == event.hash else f"hash is not the chain's {expected}"

    def ingest(self, body: _Body) -> dict[str, Any]:
        accepted = duplicates = 0
        rejected: list[dict[str, str]] = []
        batch_hashes: dict[int, str] = {}
        with self.lock:
            self.posts += 1
            self.batch_sizes.append(len(body.events))
            for raw in body.events:
                stub = _stub_decoder.decode(raw)
                problem = self._hash_problem(body.origin, bytes(raw), batch_hashes)
                if problem is not None:
                    rejected.append(
                        {"event_id": stub.event_id, "code": "hash_mismatch", "message": problem}
                    )
                    continue
                if stub.event_id in self.reject_ids:
                    rejected.append(
                        {"event_id": stub.event_id, "code": "poison", "message": "refused by rule"}
                    )
                    continue
                if stub.event_id in self.events:
                    duplicates += 1
                    continue
                accepted += 1
                self.events[stub.event_id] = bytes(raw)
                self.hashes[(stub.origin, stub.seq)] = batch_hashes[stub.seq]
                self.counts[stub.origin] = self.counts.get(stub.origin, 0) + 1
                above = self.above.setdefault(stub.origin, set())
                above.add(stub.seq)
                high = self.high_water.get(stub.origin, 0)
                while high + 1 in above:
                    high += 1
                    above.discard(high)
                self.high_water[stub.origin] = high
            self.duplicates += duplicates
            high_water = self.high_water.get(body.origin, 0)
        return {
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
            "high_water": high_water,
        }

    def decoded(self) -> list[dict[str, Any]]:
        """Every stored event, decoded, in arrival order."""
        with self.lock:
            raws = list(self.events.values())
        return [msgspec.json.decode(raw) for raw in raws]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real ingest endpoint offers
    # Headers and body are written separately: without this, Nagle plus delayed
    # ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: Any) -> None:
        body = msgspec.json.encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        expected = f"Bearer {self.server.token}".encode()
        given = self.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return True
        # Echo what was given, as careless remotes do: the client must redact it.
        self._reply(401, {"error": "unauthorized", "given": given.decode("latin-1")})
        return False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        content = self.rfile.read(length)
        if not self._authorized():
            return
        if self.path.endswith("/garbage"):
            self._reply(200, "<html>not an ingest endpoint</html>")
            return
        if length > self.server.max_body:
            self._reply(413, {"error": f"body over {self.server.max_body} bytes"})
            return
        try:
            body = _body_decoder.decode(content)
            # every event a complete envelope, as the Convex endpoint demands
            for raw in body.events:
                _envelope_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            self._reply(400, {"error": "bad_batch", "message": str(exc)})
            return
        if not self.server.state.key_allowed(
            body.origin, self.headers.get(ORIGIN_KEY_HEADER), bind=True
        ):
            self._reply(403, {"error": "origin_key", "message": "another key binds this origin"})
            return
        state = self.server.state
        if any(event_id.encode() in content for event_id in state.fail_ids):
            self._reply(500, {"error": "internal", "message": "an event broke the remote"})
            return
        answer = state.ingest(body)
        self._reply(200, answer if state.tamper is None else state.tamper(answer))

    def do_GET(self) -> None:
        if not self._authorized():
            return
        url = urlsplit(self.path)
        origin = parse_qs(url.query).get("origin", [""])[0]
        if url.path == "/atlasd/ingest/status":
            state = self.server.state
            if not state.key_allowed(origin, self.headers.get(ORIGIN_KEY_HEADER), bind=False):
                self._reply(403, {"error": "origin_key"})
                return
            with state.lock:
                payload = {
                    "origin": origin,
                    "high_water": state.high_water.get(origin, 0),
                    "events": state.counts.get(origin, 0),
                }
            self._reply(200, payload)
        else:
            self._reply(404, {"error": "not found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    token: str
    max_body: int
    state: IngestState


class IngestServer:
    """The server on an ephemeral port, served from a background thread."""

    def __init__(self, token: str = "test-token", *, max_body: int = 64 << 20) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.token = token
        self._server.max_body = max_body
        self._server.state = IngestState()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.token = token

    @property
    def state(self) -> IngestState:
        return self._server.state

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/atlasd/ingest"

    def start(self) -> IngestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> IngestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", default="test-token")
    args = parser.parse_args(argv)
    server = IngestServer(args.token)
    print(f"port={server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server._server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
