"""A local Web Push service: HTTPS on 127.0.0.1, checking what a real one checks.

It plays both ends a push message passes: the push service (verifies the VAPID ``Authorization:
vapid t=<jwt>, k=<key>`` header, RFC 8292) and the browser (holds the subscription's private
key and auth secret, decrypts the body with ``http_ece`` as pywebpush's own
``tests/test_webpush.py::test_encode`` does). Every request lands in ``received``; tests wait on
that queue with a timeout, never on a sleep.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import queue
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

# RFC 8292 §2: a push service may reject a token that expires more than 24 hours ahead.
MAX_EXP_AHEAD = 24 * 3600


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What ``PushManager.subscribe()`` makes in a browser: a P-256 key pair and a 16-byte secret."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))
    # What the push service answers for this subscription: 201, or 410 once it expired, or 500.
    status: int = 201

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def to_json(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``, exactly as a browser serialises it."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)},
        }


@dataclass
class Received:
    token: str
    answered: int
    headers: dict[str, str]
    claims: dict[str, Any]
    vapid_key: str
    plaintext: bytes
    problems: list[str]

    @property
    def payload(self) -> Any:
        return json.loads(self.plaintext)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake push service")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "push-ca.pem", directory / "push-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _parse_vapid(header: str) -> tuple[str, str]:
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"Authorization scheme {scheme!r}, expected vapid")
    values = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    return values["t"], values["k"]


def verify_vapid(header: str, origin: str) -> tuple[dict[str, Any], str, list[str]]:
    """The JWT's ES256 signature against ``k``, and its claims; returns (claims, k, problems)."""
    problems: list[str] = []
    try:
        token, key = _parse_vapid(header)
        signing_input, _, signature = token.rpartition(".")
        head_b64, _, claims_b64 = signing_input.partition(".")
        head = json.loads(b64url_decode(head_b64))
        claims = json.loads(b64url_decode(claims_b64))
        raw = b64url_decode(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    except (ValueError, KeyError) as exc:
        return {}, "", [f"malformed VAPID header: {exc}"]
    if head.get("alg") != "ES256":
        problems.append(f"alg {head.get('alg')!r}, expected ES256")
    if len(raw) != 64:
        problems.append("signature is not 64 bytes (r||s)")
    else:
        try:
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            problems.append("bad ES256 signature")
    if claims.get("aud") != origin:
        problems.append(f"aud {claims.get('aud')!r}, expected {origin!r}")
    exp = claims.get("exp")
    now = time.time()
    if not isinstance(exp, int) or not now < exp <= now + MAX_EXP_AHEAD + 60:
        problems.append(f"exp {exp!r} not within the next 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        problems.append(f"sub {claims.get('sub')!r} is not a mailto: or https: contact")
    return claims, key, problems


class FakePushService:
    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fake-push-"))
        self.ca_file, key_file = _self_signed(self._dir)
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.received: queue.Queue[Received] = queue.Queue()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                service._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.origin = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-push", daemon=True)

    def __enter__(self) -> FakePushService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()

    def new_subscription(self, status: int = 201) -> BrowserSubscription:
        token = secrets.token_urlsafe(24)
        subscription = BrowserSubscription(token=token, endpoint=f"{self.origin}/push/v2/{token}", status=status)
        self.subscriptions[token] = subscription
        return subscription

    def next(self, timeout: float = 10) -> Received:
        return self.received.get(timeout=timeout)

    def drain(self) -> list[Received]:
        items = []
        while True:
            try:
                items.append(self.received.get_nowait())
            except queue.Empty:
                return items

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in request.headers.items()}
        token = request.path.rsplit("/", 1)[-1]
        subscription = self.subscriptions.get(token)
        if subscription is None or not request.path.startswith("/push/v2/"):
            self._answer(request, 404, Received(token, 404, headers, {}, "", b"", ["unknown subscription"]))
            return
        claims, key, problems = verify_vapid(headers.get("authorization", ""), self.origin)
        if headers.get("content-encoding") != "aes128gcm":
            problems.append(f"content-encoding {headers.get('content-encoding')!r}")
        if not headers.get("ttl", "").isdigit():
            problems.append("no TTL header")
        plaintext = b""
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth_secret,
                version="aes128gcm",
            )
        except Exception as exc:
            problems.append(f"cannot decrypt: {exc!r}")
        status = 400 if problems else subscription.status
        self._answer(request, status, Received(token, status, headers, claims, key, plaintext, problems))

    def _answer(self, request: BaseHTTPRequestHandler, status: int, received: Received) -> None:
        # Recorded before answering: by the time the sender has its answer, the test can see it.
        self.received.put(received)
        request.send_response(status)
        if status == 201:
            request.send_header("Location", f"{self.origin}/message/{secrets.token_hex(8)}")
        request.send_header("Content-Length", "0")
        request.end_headers()
