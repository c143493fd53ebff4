"""Credentials in endpoint URLs are masked wherever we write or print one (issue 20 §4)."""

from __future__ import annotations

import socket

import pytest

from personasim.cli.main import main
from personasim.core.errors import EndpointUnreachable
from personasim.core.secrets import redact, redact_urls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:PASSWORD@host:8000/v1", "http://user:***@host:8000/v1"),
        ("openai:m@https://:tok3n@api.example/v1", "openai:m@https://:***@api.example/v1"),
        ("see http://a:b@h/v1 and https://c:d@k/x", "see http://a:***@h/v1 and https://c:***@k/x"),
        ("http://host/v1?api_key=SECRET&x=1", "http://host/v1?api_key=***&x=1"),
        ("http://host/v1?Token=SECRET", "http://host/v1?Token=***"),
        ("http://user@host/v1", "http://user@host/v1"),  # a user name alone is no secret
        ("http://host:8000/v1", "http://host:8000/v1"),
        ("no url at all: a@b", "no url at all: a@b"),
    ],
)
def test_redact_urls(text: str, shown: str) -> None:
    assert redact_urls(text) == shown


def test_redact_walks_nested_data() -> None:
    data = {
        "models": {"x": {"spec": "openai:m@http://u:pw@h/v1", "n": 3}},
        "list": ["http://u:pw@h", ("http://v:pw2@k",)],
    }
    shown = redact(data)
    assert "pw" not in repr(shown).replace("***", "")
    assert shown["models"]["x"]["n"] == 3 and isinstance(shown["list"][1], tuple)


def test_an_error_line_never_shows_the_password() -> None:
    error = EndpointUnreachable(
        "cannot reach http://me:hunter2@127.0.0.1:9/v1",
        hint="is http://me:hunter2@127.0.0.1:9/v1 up?",
    )
    assert "hunter2" not in error.one_line() and "me:***@127.0.0.1" in error.one_line()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_smoke_against_an_unreachable_endpoint_with_credentials_prints_no_secret(capsys) -> None:
    url = f"http://me:hunter2@127.0.0.1:{_free_port()}/v1"
    code = main(["smoke", "-m", f"openai:m@{url}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "hunter2" not in err and "me:***@" in err
