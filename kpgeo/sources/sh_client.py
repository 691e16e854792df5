"""sentinelhub-py's download client with retries bounded in count and time, and recorded.

Why not the client as it comes (sentinelhub 3.12, ``download/handlers.py`` and
``sentinelhub_client.py``):

- a 429 is retried forever unless ``max_retries`` is set, and the wait its ``Retry-After`` asks
  for is honoured however long it is (an hour's Retry-After is an hour's hang);
- 5xx and connection errors back off ``download_sleep_time * 3**k`` with no bound on the total;
- retries are only logged at debug level, so a run manifest cannot say what happened.

So :class:`BoundedClient` keeps everything else of ``SentinelHubDownloadClient`` (OAuth session
and token refresh, request headers, the shared rate-limit pacing of its threads, error message
decoding) and replaces only its ``_execute_download`` with one loop that obeys a
:class:`RetryPolicy` and appends every retry to :attr:`BoundedClient.events`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from oauthlib.oauth2 import OAuth2Error
from sentinelhub import SentinelHubDownloadClient, SentinelHubSession
from sentinelhub.decoding import decode_sentinelhub_err_msg
from sentinelhub.download.models import DownloadRequest, DownloadResponse
from sentinelhub.exceptions import DownloadFailedException

from ..errors import SourceError
from ..redaction import redact, remember

log = logging.getLogger(__name__)

#: HTTP statuses.
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500
UNAUTHORIZED = 401
FORBIDDEN = 403
#: Sentinel Hub gives ``Retry-After`` in milliseconds (its rate-limiting docs; sentinelhub-py
#: ``rate_limit.py`` reads it so too).
RETRY_AFTER_UNIT_S = 0.001
#: Exponential backoff factor of 5xx and connection errors.
BACKOFF_FACTOR = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of one request's retries.

    Attributes
    ----------
    max_attempts
        Attempts in all, the first included.
    backoff_s
        Wait after the first 5xx or connection error; multiplied by 2 after each.
    max_wait_s
        Longest single wait. A 429 whose ``Retry-After`` asks for more is not retried.
    budget_s
        Time one request may take with all its attempts and waits.
    """

    max_attempts: int = 4
    backoff_s: float = 2.0
    max_wait_s: float = 60.0
    budget_s: float = 300.0


class RequestFailed(DownloadFailedException):
    """A request that will not succeed within the policy: its scene is skipped and recorded."""

    def __init__(self, reason: str, *, attempts: int, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.status = status


class BoundedClient(SentinelHubDownloadClient):
    """A ``SentinelHubDownloadClient`` whose retries obey a :class:`RetryPolicy`.

    Parameters
    ----------
    config
        The ``SHConfig`` with credentials, service and token URLs and the per-attempt timeout.
    policy
        Retry bounds.
    sleep
        Injected for tests; ``time.sleep`` by default.

    Raises (from :meth:`fetch`)
    ---------------------------
    RequestFailed
        When the request gave up; the caller skips what it was for.
    SourceError
        When the service refuses the credentials (401 twice, 403, an OAuth error): every further
        request would fail the same way, so the run stops.
    """

    def __init__(self, *, config: Any, policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config=config)
        self.policy = policy
        self.events: list[dict[str, Any]] = []
        self._sleep = sleep
        # ^ the parent creates its lock only inside download(); fetch() is called from kpgeo's
        #   own threads, so the lock lives as long as the client
        self._lock = threading.Lock()
        self.lock = self._lock
        self._events_lock = threading.Lock()
        remember(config.sh_client_id, config.sh_client_secret)

    # -- the session: one per client, made on the first request that needs it -----------------
    def get_session(self) -> SentinelHubSession:
        """The OAuth session of this client (not the class-wide cache of sentinelhub-py, so two
        sources never share a token); called under :attr:`lock`."""
        if self.session is None:
            self.session = SentinelHubSession(config=self.config)
        return self.session

    def _get_session_headers(self) -> dict[str, str]:
        """The session's ``Authorization`` header; its token is remembered for redaction
        (:mod:`kpgeo.redaction`) before any request carries it."""
        headers: dict[str, str] = super()._get_session_headers()
        remember(headers.get("Authorization", "").removeprefix("Bearer "))
        return headers

    def _execute_download(self, request: DownloadRequest) -> DownloadResponse:
        """Used by sentinelhub-py's own calls through this client (Catalog search pages)."""
        return self.fetch(request, label=_label_of(request))

    # -- one request -----------------------------------------------------------------------------
    def fetch(self, request: DownloadRequest, *, label: str) -> DownloadResponse:
        """Send one request, retrying 429, 5xx and connection errors within the policy."""
        policy = self.policy
        started = time.monotonic()
        deadline = started + policy.budget_s
        attempts = 0
        transient = 0
        reauthorised = False
        while True:
            self._pace(deadline, label, attempts)
            attempts += 1
            try:
                response = self._do_download(request)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError,
                    requests.exceptions.TooManyRedirects) as exc:
                # A garbled or looping answer is treated like a dropped connection: retried
                # within the bounds, then the scene is skipped and recorded.
                problem, status, wait = type(exc).__name__, None, None
            except DownloadFailedException as exc:  # from the token request
                problem, status = _token_problem(exc)
                wait = None
            except OAuth2Error as exc:
                raise SourceError(
                    f"the Sentinel Hub token service {self.config.sh_token_url} refused the "
                    f"client credentials ({redact(str(exc.error))}); check SH_CLIENT_ID and SH_CLIENT_SECRET "
                    "(an OAuth client of this deployment) and source.sh_token_url."
                ) from None
            else:
                status = response.status_code
                if status < 400:
                    return DownloadResponse.from_response(response, request)
                # The answer goes into log lines, errors and the manifest: a server that
                # echoes the request would put the bearer token there.
                message = redact(decode_sentinelhub_err_msg(response))
                if status == UNAUTHORIZED and not reauthorised:
                    # ^ a token the service dropped early: one fresh token, then give up
                    reauthorised = True
                    with self._lock:
                        self.session = None
                    attempts -= 1
                    continue
                if status in (UNAUTHORIZED, FORBIDDEN):
                    raise SourceError(
                        f"Sentinel Hub at {self.config.sh_base_url} refused the request with "
                        f"HTTP {status} ({message}); check SH_CLIENT_ID/SH_CLIENT_SECRET and the "
                        "account's monthly quota."
                    )
                problem = f"HTTP {status}: {message}"
                wait = _retry_after_s(response) if status == TOO_MANY_REQUESTS else None
                if status != TOO_MANY_REQUESTS and status < SERVER_ERROR:
                    raise RequestFailed(f"{problem} (not retried)", attempts=attempts,
                                        status=status)
            if problem.startswith("token: ") and status is not None and status < SERVER_ERROR \
                    and status != TOO_MANY_REQUESTS:
                raise SourceError(
                    f"the Sentinel Hub token service {self.config.sh_token_url} refused the "
                    f"client credentials ({problem}); check SH_CLIENT_ID and SH_CLIENT_SECRET."
                )
            if wait is None:
                wait = min(policy.backoff_s * BACKOFF_FACTOR ** transient, policy.max_wait_s)
                transient += 1
            elapsed = time.monotonic() - started
            if wait > policy.max_wait_s:
                raise RequestFailed(
                    f"{problem}; the service asked to wait {wait:.1f} s, more than "
                    f"sh_max_wait_s = {policy.max_wait_s:g}", attempts=attempts, status=status)
            if attempts >= policy.max_attempts:
                raise RequestFailed(f"{problem}; gave up after {attempts} attempts in "
                                    f"{elapsed:.1f} s (sh_max_attempts = {policy.max_attempts})",
                                    attempts=attempts, status=status)
            if time.monotonic() + wait > deadline:
                raise RequestFailed(f"{problem}; gave up after {attempts} attempts in "
                                    f"{elapsed:.1f} s (sh_request_budget_s = {policy.budget_s:g})",
                                    attempts=attempts, status=status)
            self._record(label=label, attempt=attempts, problem=problem, status=status,
                         wait_s=round(wait, 3))
            if status == TOO_MANY_REQUESTS:
                # ^ hold every thread of this client, not only this one (shared pacing)
                with self._lock:
                    self.rate_limit.next_download_time = max(
                        self.rate_limit.next_download_time, time.monotonic() + wait)
            else:
                self._sleep(wait)

    def _pace(self, deadline: float, label: str, attempts: int) -> None:
        """Wait for the client's shared rate limit, within the request's time budget."""
        while True:
            with self._lock:
                wait = self.rate_limit.register_next()
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise RequestFailed(
                    f"rate limited; the next allowed request is {wait:.1f} s away, past "
                    f"sh_request_budget_s = {self.policy.budget_s:g}", attempts=attempts,
                    status=TOO_MANY_REQUESTS)
            self._sleep(wait)

    def _record(self, **event: Any) -> None:
        log.info("Sentinel Hub %s: %s; retry %d in %.1f s", event["label"], event["problem"],
                 event["attempt"], event["wait_s"])
        with self._events_lock:
            self.events.append(event)


def _label_of(request: DownloadRequest) -> str:
    url = request.url or ""
    return "catalog search" if url.endswith("/search") else url.rsplit("/", 1)[-1]


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) * RETRY_AFTER_UNIT_S if value is not None else None
    except ValueError:
        return None


def _token_problem(exc: DownloadFailedException) -> tuple[str, int | None]:
    """What went wrong getting a token: a status if the service answered."""
    cause = exc.request_exception
    if isinstance(cause, requests.HTTPError) and cause.response is not None:
        return f"token: HTTP {cause.response.status_code}", cause.response.status_code
    return f"token: {type(cause).__name__ if cause else 'failed'}", None
