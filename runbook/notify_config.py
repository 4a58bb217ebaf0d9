"""Notification URLs (``--notify URL``, ``notify:`` in a bindings file or front matter).

Only ``http`` and ``https`` URLs with a host are accepted.  A webhook URL is a secret
(credentials in it, or a token as its path, as Slack's are): :func:`mask_url` is what
may be shown or journaled, never the URL itself.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import SplitResult, urlsplit

MAX_URL_LEN = 2048


def notify_url_problem(url: Any) -> str | None:
    """Why ``url`` cannot be a notification URL (None: it can)."""
    if not isinstance(url, str) or not url.strip():
        return f"a notification URL must be an http:// or https:// URL (text), not {_shown(url)}"
    if len(url) > MAX_URL_LEN:
        return f"a notification URL longer than {MAX_URL_LEN} characters"
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        return f"{mask_url(url)}: a notification URL must not hold spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{mask_url(url)}: not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        what = f"{parts.scheme}:" if parts.scheme else "no scheme"
        return f"{mask_url(url)}: notifications go to http:// or https:// URLs only, not {what}"
    if not parts.hostname:
        return f"{mask_url(url)}: a notification URL needs a host"
    if port == 0:
        return f"{mask_url(url)}: port 0"
    return None


def url_digest(url: str) -> str:
    """A short digest telling URLs apart without showing them."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def mask_url(url: str) -> str:
    """``scheme://host:port/… #digest``: no credentials, path or query (they may be the secret)."""
    try:
        parts: SplitResult | None = urlsplit(url)
        host = parts.hostname or "" if parts else ""
        port = parts.port if parts else None
    except ValueError:
        parts, host, port = None, "", None
    scheme = parts.scheme if parts is not None and parts.scheme in ("http", "https") else "?"
    if host and ":" in host:
        host = f"[{host}]"
    where = "".join(c if c.isprintable() and not c.isspace() else "?" for c in host)[:100] or "?"
    port_text = f":{port}" if port else ""
    return f"{scheme}://{where}{port_text}/… #{url_digest(url)}"


def notify_urls(value: Any) -> tuple[list[str], list[str]]:
    """(URLs, problems) of a ``notify:`` value: one URL or a list of them."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None:
        return [], [f"notify: expected a URL or a list of URLs, not {_shown(value)}"]
    urls: list[str] = []
    problems: list[str] = []
    for item in items:
        problem = notify_url_problem(item)
        if problem:
            problems.append(f"notify: {problem}")
        elif item.strip() not in urls:
            urls.append(item.strip())
    return urls, problems


def _shown(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, (str, int, float)) else repr(value)[:40]
