"""Credentials never leave the process: every URL we write or print is redacted first.

An endpoint may be given as ``http://user:PASSWORD@host/v1`` or with ``?api_key=...``; the run
directory (``manifest.json``, ``study.toml``, ``report.html``), one-line errors and the CLI's
output show ``http://user:***@host/v1`` and ``?api_key=***`` instead. The API key read from
``OPENAI_API_KEY`` is never written anywhere in the first place.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
"""What a secret is replaced with."""

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*):[^\s/@]*@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|passwd|auth)=)"
    r"[^&#\s'\"]+",
    re.IGNORECASE,
)


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` and the value of every
    secret-looking query parameter replaced by :data:`MASK` (the user name is kept: it says
    which account, not how to log in)."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('name')}{MASK}", text)


def redact(value: Any) -> Any:
    """:func:`redact_urls` applied to every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {redact(key): redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value
