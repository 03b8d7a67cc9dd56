"""One redactor masks the ingest token in every form text may carry it in."""

from __future__ import annotations

from urllib.parse import quote

import msgspec
import pytest

from atlasd.redact import MASK, Redactor

#: Characters that URL-quoting, JSON and repr each write differently.
TOKEN = "tok/en+with=odd&chars\"'\\0123"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {MASK}", id="bearer header"
        ),
        pytest.param(
            f"GET https://host.example/ingest?token={quote(TOKEN, safe='')}&x=1",
            f"GET https://host.example/ingest?token={MASK}&x=1",
            id="url query",
        ),
        pytest.param(
            f"ATLASD_INGEST_TOKEN={TOKEN} ATLASD_SOCKET=/run/a.sock",
            f"ATLASD_INGEST_TOKEN={MASK} ATLASD_SOCKET=/run/a.sock",
            id="env",
        ),
        pytest.param(f"Secret(value={TOKEN!r})", f"Secret(value='{MASK}')", id="repr"),
    ],
)
def test_the_token_is_masked_in_each_form_it_travels_in(text: str, expected: str) -> None:
    """A bearer header, a URL query, an environment line and a repr each lose the token
    and keep the text around it."""
    assert Redactor([TOKEN])(text) == expected


def test_credentials_written_into_a_url_are_masked_without_any_secret_known() -> None:
    """``scheme://user:password@host`` keeps its host and loses its userinfo."""
    cleaned = Redactor(())("fetch https://user:pa55word@host.example/x failed")
    assert cleaned == f"fetch https://{MASK}@host.example/x failed"


def test_short_values_are_not_searched_for() -> None:
    """A secret under six characters would mask ordinary words, so it is left alone."""
    assert Redactor(["abc"])("abc abcdef") == "abc abcdef"


def test_a_password_holding_an_at_sign_is_masked_whole() -> None:
    """The userinfo ends at the authority's last ``@``, as URL parsers read it."""
    cleaned = Redactor(())("fetch https://user:p@ss@host.example/x failed")
    assert cleaned == f"fetch https://{MASK}@host.example/x failed"


def test_url_credentials_are_masked_within_one_json_string() -> None:
    """Redacting a JSON text (the ``status`` answer) never reaches from one string into
    the next: the text stays the same JSON, less the masked userinfo."""
    answer = {
        "ingest_url": "https://ingest.example",
        "quarantine": [{"seq": 3, "code": "invalid", "message": "x@y"}],
        "remote": "https://user:pw@ingest.example/a",
    }
    cleaned = Redactor(())(msgspec.json.encode(answer).decode())
    assert msgspec.json.decode(cleaned) == {**answer, "remote": f"https://{MASK}@ingest.example/a"}
