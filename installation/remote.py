"""The web remote for gallery staff: status, a live view and controls in a browser, served off the display thread.

A Starlette app served by uvicorn in a background thread. The display loop only hands things over: the picture
on screen (a one-slot hand-off of a reference) and the status document (twice a second). The web thread encodes
the live view at most `remote_thumbnail_rate` times a second; the loop never waits on a web client.

Access: every control needs the token, as `Authorization: Bearer <token>` or a session cookie got by logging in
with it (HttpOnly, SameSite=Strict); the token never travels in a URL, so it never reaches a log. Status, health
and the live view need it too unless `remote_open_status`. POSTs from other origins are refused: the Origin
must match the Host, and bodies must be JSON, which a page elsewhere cannot send without a preflight this server
never answers. A Host that is not an IP address, localhost, this machine's name or a configured name is refused,
so a rebound DNS name cannot reach the remote from a browser. Clients outside `remote_allow` get 403; controls
and logins are rate limited per client (429).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np

from installation.controls import PARAMETERS, ControlState
from installation.osc import parse_allowlist, plain_address
from installation.parameters import TABLE

log = logging.getLogger(__name__)

CONTROLS = tuple(parameter.name for parameter in TABLE if parameter.remote)  # `remote` in the parameter table
VALUES = tuple(name for name in CONTROLS if not PARAMETERS[name].is_trigger)  # the controls with a value the page shows
SOURCE = "remote"
COOKIE = "masquerade_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 256
MAX_BODY = 4096
DEFAULT_TOKEN_FILE = "~/.config/masquerade/remote-token"
STATIC = Path(__file__).with_name("static")
PAGES = {"/": ("remote.html", "text/html; charset=utf-8"), "/remote.js": ("remote.js", "text/javascript"),
         "/remote.css": ("remote.css", "text/css")}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; "
                                 b"base-uri 'none'; form-action 'none'"),
]


class RemoteStartError(ValueError):
    """The remote cannot listen where it is configured to (a busy port, an address this machine lacks)."""


class Presets(Protocol):
    """What the remote needs from the piece's presets (installation/presets.py): the stored presets by name, and
    a queued recall that the display loop carries out like a key or OSC recall."""

    presets: Mapping[str, Any]

    def request(self, action: str, raw_key: Any, source: str) -> str: ...


# --------------------------------------------------------------------------------------------------
# The token


def token_path(config) -> Path:
    return Path(os.path.expanduser(config.remote_token_file or DEFAULT_TOKEN_FILE))


def load_token(config) -> str:
    """The configured token, else the token file's, else a new one written there readable only by this user."""
    if config.remote_token:
        return config.remote_token
    path = token_path(config)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_token(path)
    except OSError as error:
        raise ValueError(f"cannot write the remote token file {path}: {error.strerror or error}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    log.info("remote: new access token written to %s (readable only by this user)", path)
    return token


def read_token(path: Path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"remote token file {path} can be read by other users (mode {mode:o}); chmod 600 {path}")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise ValueError(f"remote token file {path} holds no token of at least 16 characters; delete it to have "
                         "a new one made")
    return token


# --------------------------------------------------------------------------------------------------
# Hand-offs from the display loop, and the per-client bookkeeping


class FrameSlot:
    """The latest picture on screen, one slot: the loop stores a reference, the web side encodes a JPEG of it at
    most `rate` times a second and serves the last encoding in between."""

    def __init__(self, size: int, rate: float, clock: Callable[[], float] = time.monotonic):
        self.size, self.interval, self.clock = size, 1.0 / rate, clock
        self.latest: tuple[int, np.ndarray | None] = (0, None)
        self.lock = threading.Lock()  # web side only: two requests do not encode the same picture twice
        self.encoded: tuple[int, bytes] | None = None
        self.encoded_at = -float("inf")
        self.encodings = 0

    def offer(self, frame: np.ndarray) -> None:
        """Called by the display loop every frame: one tuple assignment, no copy, no lock."""
        self.latest = (self.latest[0] + 1, frame)

    def jpeg(self) -> tuple[int, bytes] | None:
        number, frame = self.latest
        if frame is None:
            return None
        with self.lock:
            now = self.clock()
            if self.encoded is None or (self.encoded[0] != number and now - self.encoded_at >= self.interval):
                self.encoded, self.encoded_at = (number, encode_jpeg(frame, self.size)), now
                self.encodings += 1
            return self.encoded


def encode_jpeg(frame: np.ndarray, size: int) -> bytes:
    height, width = frame.shape[:2]
    scale = size / max(height, width)
    if scale < 1:
        frame = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


class RateLimiter:
    """A token bucket per client: `burst` at once, then `rate` a second. Bounded: the oldest clients are forgotten."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, clients: int = 4096):
        self.rate, self.burst, self.clock, self.clients = rate, burst, clock, clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.lock = threading.Lock()
        self.refused = 0

    def allow(self, client: str) -> bool:
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self.buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self.buckets) > self.clients:
                self.buckets.popitem(last=False)
            self.refused += not allowed
            return allowed


class Sessions:
    """Logged-in browsers: random ids (the cookie holds one, never the token), each valid for SESSION_SECONDS."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.expiry: OrderedDict[str, float] = OrderedDict()
        self.lock = threading.Lock()

    def create(self) -> str:
        session = secrets.token_urlsafe(32)
        with self.lock:
            self.expiry[session] = self.clock() + SESSION_SECONDS
            while len(self.expiry) > MAX_SESSIONS:
                self.expiry.popitem(last=False)
        return session

    def valid(self, session: str) -> bool:
        with self.lock:
            expiry = self.expiry.get(session)
            if expiry is not None and expiry <= self.clock():
                del self.expiry[session]
                expiry = None
        return expiry is not None

    def drop(self, session: str) -> None:
        with self.lock:
            self.expiry.pop(session, None)


def host_names(config) -> frozenset[str]:
    """Names the remote answers to besides IP literals: localhost, this machine's name, configured ones."""
    machine = socket.gethostname().lower()
    extra = [name.strip().lower().rstrip(".") for name in config.remote_names.split(",") if name.strip()]
    return frozenset({"localhost", machine, f"{machine}.local", *extra})


def host_allowed(host: str, names: frozenset[str]) -> bool:
    """The Host header's name (port dropped) is an IP address or one of `names`."""
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return bool(name) and name.lower().rstrip(".") in names


# --------------------------------------------------------------------------------------------------
# The server


class Guard:
    """ASGI wrapper for every request: the client's network and the Host name, then security headers."""

    def __init__(self, app, networks: tuple, names: frozenset[str]):
        self.app, self.networks, self.names = app, networks, names

    def client_allowed(self, client) -> bool:
        if not self.networks:
            return True
        try:
            address = plain_address(ipaddress.ip_address(client[0].split("%", 1)[0]))
        except (TypeError, ValueError, IndexError):
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        problem = None
        if not self.client_allowed(scope.get("client")):
            problem = (403, "this address may not use the remote (remote_allow)")
        elif not host_allowed(host, self.names):
            problem = (421, "unknown host name; add it to remote_names")
        if problem is not None:
            from starlette.responses import JSONResponse

            return await JSONResponse({"error": problem[1]}, problem[0])(scope, receive, self.with_headers(send))
        await self.app(scope, receive, self.with_headers(send))

    @staticmethod
    def with_headers(send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        return send_with_headers


class Remote:
    """The remote's state and routes; `start()` serves it from a background thread."""

    def __init__(self, config, controls: ControlState, presets: Presets | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.config, self.controls, self.presets, self.clock = config, controls, presets, clock
        self.token = load_token(config)
        self.networks = parse_allowlist(config.remote_allow, "remote_allow") if config.remote_allow.strip() else ()
        self.frames = FrameSlot(config.remote_thumbnail_size, config.remote_thumbnail_rate, clock)
        self.document: dict = {"state": "starting"}
        self.limiter = RateLimiter(config.remote_control_rate, config.remote_control_burst, clock)
        self.sessions = Sessions(clock)
        self.pages = {path: ((STATIC / name).read_bytes(), kind) for path, (name, kind) in PAGES.items()}
        self.app = Guard(self.routes(), self.networks, host_names(config))
        self.server = self.thread = None
        self.address: tuple[str, int] | None = None
        self.controls_applied = 0

    # Hand-offs from the display loop.
    def offer_frame(self, frame: np.ndarray) -> None:
        self.frames.offer(frame)

    def publish(self, document: dict) -> None:
        """The status file's document, handed over by the display loop (a new dict each time, never changed)."""
        self.document = document

    # Serving.
    def start(self) -> Remote:
        import uvicorn

        host, port = self.config.remote_host, self.config.remote_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP,
        # and with it on, each keep-alive response waits ~40 ms for the client's delayed ACK.
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
        except OSError as error:
            listener.close()
            raise RemoteStartError(f"the web remote cannot listen on {host}:{port} ({error.strerror or error}); "
                                   "choose another remote_port or remote_host") from None
        self.address = listener.getsockname()[:2]
        settings = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off", ws="none",
                                  timeout_keep_alive=5, limit_concurrency=128, server_header=False,
                                  date_header=False, log_level="warning")
        self.server = uvicorn.Server(settings)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]}, name="remote",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10.0
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise RemoteStartError(f"the web remote did not start on {host}:{self.address[1]}")
        where = f"http://{host if ':' not in host else f'[{host}]'}:{self.address[1]}/"
        log.info("web remote on %s%s", where, f" for {', '.join(map(str, self.networks))}" if self.networks else "")
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback and not self.networks:
            log.warning("the web remote is reachable from other machines; set remote_allow to the gallery's network")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5.0)

    @property
    def port(self) -> int:
        return self.address[1] if self.address else 0

    def status(self) -> str:
        return f"listening on {self.config.remote_host}:{self.port}" if self.address else "off"

    def routes(self):
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[
            *(Route(path, self.page) for path in PAGES),
            Route("/health", self.health),
            Route("/api/status", self.api_status),
            Route("/api/thumbnail.jpg", self.thumbnail),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/control", self.control, methods=["POST"]),
            Route("/api/preset", self.preset, methods=["POST"]),
        ])

    # Checks.
    def authenticate(self, request):
        """None when the request carries the token or a valid session; otherwise the refusal (401 or 403)."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return None
            return refuse(403, "wrong token")
        session = request.cookies.get(COOKIE)
        if session is not None and self.sessions.valid(session):
            return None
        return refuse(401, "log in with the remote's token", {"www-authenticate": "Bearer"})

    def may_read(self, request):
        return None if self.config.remote_open_status else self.authenticate(request)

    def refuse_cross_origin(self, request):
        """Refuse a POST a page on another site could have sent: its Origin, and bodies that are not JSON."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                return refuse(403, "cross-origin request refused")
        elif request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return refuse(403, "cross-site request refused")
        elif COOKIE in request.cookies and "authorization" not in request.headers:
            return refuse(403, "a browser request without an Origin header is refused")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return refuse(415, "send JSON (Content-Type: application/json)")
        return None

    def client(self, request) -> str:
        return request.client.host if request.client else "?"

    async def json_body(self, request) -> dict:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise ValueError(f"request body over {MAX_BODY} bytes")
        try:
            value = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("the body is not JSON") from None
        if not isinstance(value, dict):
            raise ValueError("the body must be a JSON object")
        return value

    async def checked_post(self, request, limit: bool = True, authenticate: bool = True):
        """(body, None) for an acceptable POST, (None, refusal) otherwise; checks in the order that leaks least."""
        refusal = self.refuse_cross_origin(request)
        if refusal is None and limit and not self.limiter.allow(self.client(request)):
            refusal = refuse(429, "too many requests; wait a moment", {"retry-after": "1"})
        if refusal is None and authenticate:
            refusal = self.authenticate(request)
        if refusal is not None:
            return None, refusal
        try:
            return await self.json_body(request), None
        except ValueError as error:
            return None, refuse(400, str(error))

    # Routes.
    async def page(self, request):
        from starlette.responses import Response

        body, kind = self.pages[request.url.path]
        return Response(body, media_type=kind)

    async def health(self, request):
        from starlette.responses import Response

        refusal = self.may_read(request)
        return refusal or Response(json.dumps(self.document), media_type="application/json")

    async def api_status(self, request):
        from starlette.responses import JSONResponse

        refusal = self.may_read(request)
        if refusal is not None:
            return refusal
        snapshot = self.controls.snapshot()
        return JSONResponse({
            "health": self.document, "controls": {name: snapshot[name] for name in VALUES},
            "presets": self.preset_names(), "signed_in": self.authenticate(request) is None,
        })

    def thumbnail(self, request):
        """A plain function: Starlette runs it in its thread pool, so JPEG encoding never holds the event loop."""
        from starlette.responses import Response

        refusal = self.may_read(request)
        if refusal is not None:
            return refusal
        encoded = self.frames.jpeg()
        if encoded is None:
            return refuse(503, "no picture yet")
        number, data = encoded
        tag = f'"{number}"'
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"etag": tag})
        return Response(data, media_type="image/jpeg", headers={"etag": tag})

    async def login(self, request):
        from starlette.responses import JSONResponse

        body, refusal = await self.checked_post(request, authenticate=False)
        if refusal is not None:
            return refusal
        given = body.get("token")
        if not isinstance(given, str) or not given:
            return refuse(401, "give the token")
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            log.warning("remote: wrong token from %s", self.client(request))
            return refuse(403, "wrong token")
        response = JSONResponse({"signed_in": True})
        response.set_cookie(COOKIE, self.sessions.create(), max_age=SESSION_SECONDS, path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(self, request):
        from starlette.responses import JSONResponse

        _, refusal = await self.checked_post(request, limit=False, authenticate=False)
        if refusal is not None:
            return refusal
        self.sessions.drop(request.cookies.get(COOKIE, ""))
        response = JSONResponse({"signed_in": False})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def control(self, request):
        from starlette.responses import JSONResponse

        body, refusal = await self.checked_post(request)
        if refusal is not None:
            return refusal
        name = body.get("name")
        if name not in CONTROLS:
            return refuse(400, f"unknown control {str(name)[:40]!r}; known: {', '.join(CONTROLS)}")
        try:
            applied, clamped = self.controls.set(name, body.get("value"), SOURCE)
        except ValueError as error:
            return refuse(400, str(error))
        self.controls_applied += applied is not None
        log.info("remote: %s = %s from %s", name, applied, self.client(request))
        return JSONResponse({"name": name, "applied": applied, "clamped": clamped,
                             "held": applied is None and not self.controls.parameters[name].is_trigger})

    async def preset(self, request):
        from starlette.responses import JSONResponse

        body, refusal = await self.checked_post(request)
        if refusal is not None:
            return refusal
        name = body.get("name")
        if name not in self.preset_names():
            return refuse(404, f"no preset {str(name)[:40]!r}")
        try:
            self.presets.request("recall", name, SOURCE)
        except ValueError as error:
            return refuse(400, str(error))
        return JSONResponse({"preset": name})

    def preset_names(self) -> list[str]:
        return sorted(self.presets.presets) if self.presets is not None else []


def refuse(status: int, message: str, headers: dict[str, Any] | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status, headers=headers)


def check_remote(config) -> str:
    """`--check`: the port can be opened and the token is readable (or will be written at first start)."""
    if config.remote_token:
        where = "token from the configuration"
    else:
        path = token_path(config)
        where = f"token in {path}" if path.exists() and read_token(path) else f"a token will be written to {path}"
    host = config.remote_host
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, config.remote_port))
    except OSError as error:
        raise ValueError(f"the web remote cannot listen on {host}:{config.remote_port} "
                         f"({error.strerror or error})") from None
    return f"TCP {host}:{config.remote_port} is free, {where}"
