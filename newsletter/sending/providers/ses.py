"""Amazon SES v2: SendEmail with the raw MIME message, one kept-alive connection per thread.

The boto3 `sesv2` client is made once per factory: it asks GetAccount for the sending rate,
and it is where botocore resolves the endpoint (region or `[ses] endpoint_url`), its
timeouts and its event hooks. Each message then skips botocore's per-call machinery (see
ses_wire.py): its body is signed with botocore's SigV4 signer and sent over the thread's own
connection. Its `before-send.sesv2.SendEmail` event is still emitted, as botocore would, so
that what hooks into it (moto's in-process mock, a test looking at the request) keeps
working; a handler that answers is the answer.

No retries here: pacing and backoff stay with the campaign loop, and SendEmail is not
idempotent, so a call whose answer was lost is never repeated. What failed before the
request was written is certainly not sent (retryable, or unavailable when no connection
could be made); once it was written, a lost answer is uncertain.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError
from botocore.hooks import first_non_none_response

from newsletter.config.delivery import SESSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers.base import SendError
from newsletter.sending.providers.ses_wire import (
    OPERATION,
    AnswerReader,
    Route,
    Signer,
    convert,
    fixed_fields,
    route_for,
    send_email_body,
)

__all__ = ["SESFactory", "SESProvider", "convert"]

NO_CREDENTIALS = "SES: Unable to locate credentials (set them as for any AWS tool: environment, profile or role)"


def _client(settings: SESSettings):
    config = BotoConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=64,
    )
    return boto3.session.Session().client(
        "sesv2", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )


def _dropped(sock: Any) -> bool:
    """An idle kept-alive connection with something to read was closed by the server (or
    holds an answer nobody asked for): not to be written to."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class Connection:
    """One kept-alive HTTP(S) connection to the endpoint, through the proxy when one applies."""

    def __init__(self, route: Route, tls: ssl.SSLContext | None):
        self.route = route
        self.tls = tls
        self._conn: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        route = self.route
        host, port = (route.proxy.host, route.proxy.port) if route.proxy else (route.host, route.port)
        conn: http.client.HTTPConnection
        if route.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=route.connect_timeout, context=self.tls)
            if route.proxy:
                conn.set_tunnel(route.host, route.port, headers=route.proxy.headers)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=route.connect_timeout)
        try:
            conn.connect()
            conn.sock.settimeout(route.read_timeout)
            # headers and body leave in two writes: without this the body's last segment
            # would wait for the server's delayed ACK of the first (urllib3 sets it too)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise SendError(f"SES: cannot connect to {route.url}: {exc}", unavailable=True) from exc
        return conn

    def exchange(self, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = self._conn
        if conn is not None and (conn.sock is None or _dropped(conn.sock)):
            conn.close()
            conn = None
        if conn is None:
            conn = self._conn = self._open()
        try:
            conn.request("POST", self.route.target, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"SES: the connection failed before the message was handed over: {exc!r}",
                            retryable=True) from exc  # fmt: skip
        try:
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"SES: no answer after the message was sent; it may have gone out: {exc!r}",
                            uncertain=True) from exc  # fmt: skip

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Lane:
    """What every thread's provider shares, resolved once per factory."""

    def __init__(self, client: Any, credentials: Any, ca_bundle: str | None, settings: SESSettings):
        meta = client.meta
        if not meta.region_name:
            raise SendError("SES: no region: set [ses] region, AWS_REGION or a profile's region", fatal=True)
        self.route = route_for(meta.endpoint_url, meta.config, ca_bundle)
        self.tls = _tls_context(self.route.cafile) if self.route.cafile else None
        self.signer = Signer(credentials, meta.service_model.signing_name, meta.region_name, self.route.url)
        operation = meta.service_model.operation_model(OPERATION)
        self.reader = AnswerReader(operation)
        self.events = meta.events
        self.event = f"before-send.{meta.service_model.service_id.hyphenize()}.{OPERATION}"
        self.extra = fixed_fields(settings.configuration_set, settings.tags)


def _tls_context(cafile: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SendError(f"SES: the CA bundle {cafile} (AWS_CA_BUNDLE or ca_bundle) cannot be read: {reason}",
                        fatal=True) from exc  # fmt: skip


class SESProvider:
    def __init__(self, lane: Lane):
        self.lane = lane
        self.connection = Connection(lane.route, lane.tls)

    def send(self, message: Outgoing) -> str:
        lane = self.lane
        body = send_email_body(message, lane.extra)
        request = AWSPreparedRequest("POST", lane.route.url, lane.signer.sign(body), body, False)
        answered = first_non_none_response(lane.events.emit(lane.event, request=request))
        if answered is not None:
            status, headers, content = answered.status_code, list(answered.headers.items()), answered.content
        else:
            status, headers, content = self.connection.exchange(request.headers, request.body)
        return lane.reader.message_id(status, headers, content)

    def close(self) -> None:
        self.connection.close()


class SESFactory:
    name = "ses"

    def __init__(self, settings: SESSettings, client=None):
        self.settings = settings
        self._client = client
        self._lane: Lane | None = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = _client(self.settings)
            return self._client

    def max_rate(self) -> float | None:
        """SendQuota.MaxSendRate from GetAccount, when the endpoint offers it."""
        try:
            quota = self.client().get_account().get("SendQuota", {})
        except Exception:  # noqa: BLE001 - an endpoint without GetAccount (or no permission) sets no limit
            return None
        rate = quota.get("MaxSendRate")
        return float(rate) if rate and rate > 0 else None

    def lane(self) -> Lane:
        """The endpoint, credentials, CA bundle and proxy, resolved on the first open only."""
        try:
            client = self.client()
            with self._lock:
                if self._lane is None:
                    session = botocore.session.Session()
                    credentials = session.get_credentials()
                    if credentials is None:
                        raise SendError(NO_CREDENTIALS, fatal=True)
                    self._lane = Lane(client, credentials, session.get_config_variable("ca_bundle"), self.settings)
                return self._lane
        except BotoCoreError as exc:
            raise SendError(f"SES: {exc}", fatal=True) from exc

    def open(self) -> SESProvider:
        return SESProvider(self.lane())
