"""Server addresses as the kit shows and writes them: never with the credentials a user
may have put in them (``http://user:PASSWORD@host``)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://)(?P<info>[^/@\s]{0,512})@")
"""A URL's ``user:password@``; its parts bounded, so that a long text is searched in
linear time."""


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its user and password, and those two (None when absent)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redacted(url), None, None
    if "@" not in parts.netloc:
        return url, None, None
    info, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = info.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if sep else None


def redacted(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)


def has_credentials(text: str) -> bool:
    """Whether a URL in ``text`` carries a user or password."""
    return _USERINFO.search(text) is not None
