"""Credentials never reach an output stream or file, at any verbosity (docs/product.md §10).

Two layers:

- third-party loggers that write credentials at debug level (oauthlib prints the token
  request's body, with ``client_secret``, and the token it got; requests-oauthlib and urllib3
  print request bodies and answers) are held at WARNING whatever ``-v`` asks for
  (:data:`NOISY_LOGGERS`, set by :mod:`kpgeo.userlog`);
- every text that leaves kpgeo through its log handler, its one-line error or a manifest record
  of a failed request passes :func:`redact`, which replaces the credentials this process
  holds (:func:`remember`: the Sentinel Hub client id and secret, each access token when it is
  used) and anything shaped like one (a bearer token, ``client_secret=...``,
  ``"access_token": "..."``) with :data:`MASK`. A server whose error echoes the request's
  headers or the token request's body is thereby answered in words without them.
"""

from __future__ import annotations

import logging
import re
import threading

#: What a secret is replaced with.
MASK = "[redacted]"
#: Loggers of libraries that log credentials at debug level: never below WARNING.
NOISY_LOGGERS = ("oauthlib", "requests_oauthlib", "urllib3", "sentinelhub.download.session")
#: Shorter values are not remembered: replacing every "abc" in a log would garble it, and a
#: credential is never that short.
MIN_SECRET_CHARS = 6

_KEYS = r"access_token|refresh_token|id_token|client_secret|client_id|password"
#: Secrets recognised by their shape, the first group kept: a bearer credential, a basic one
#: after its header's name, and a value after a credential's key in a form, a query, JSON or a
#: Python dict's repr (not inside a longer name: ``SH_CLIENT_SECRET=...`` in kpgeo's advice).
PATTERNS = (
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{4,}"),
    re.compile(r"(?i)(authorization\\?[\"']?\s*[:=]\s*\\?[\"']?basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(rf"(?i)((?<!\w)(?:{_KEYS})\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'\\&,;}}]+"),
)

_known: set[str] = set()
_lock = threading.Lock()


def remember(*values: str | None) -> None:
    """Redact these values (a credential, a token) from every output of this process."""
    with _lock:
        _known.update(v for v in values if v and len(v) >= MIN_SECRET_CHARS)


def redact(text: str) -> str:
    """``text`` without any remembered secret or anything shaped like a credential."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # a secret holding another goes first
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (traceback included) passes :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def quiet_noisy_loggers() -> None:
    """Hold the loggers that print credentials at WARNING (see :data:`NOISY_LOGGERS`)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
