"""The web remote over real HTTP: a real uvicorn server on loopback, the real control state behind it."""

import http.client
import json
import os
import socket
import stat
import time

import cv2
import numpy as np
import pytest

from installation.config import RuntimeConfig
from installation.controls import ControlState
from installation.kiosk import Health, Heartbeat
from installation.remote import COOKIE, Remote, load_token

TOKEN = "correct-horse-battery-staple-42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_remote(tmp_path, **settings):
    settings = {"remote": True, "remote_port": free_port(), "remote_token": TOKEN, "osc": False, **settings}
    controls = ControlState(hold_seconds=0.0)
    return Remote(RuntimeConfig(**settings), controls).start(), controls


@pytest.fixture
def served(tmp_path):
    remote, controls = make_remote(tmp_path)
    yield remote, controls
    remote.stop()


def request(remote, method, path, body=None, host=None, **headers):
    """One HTTP request; returns (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", remote.port, timeout=10)
    headers = {key.replace("_", "-"): value for key, value in headers.items()}
    headers.setdefault("Host", host or f"127.0.0.1:{remote.port}")
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    if isinstance(body, dict):
        headers.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def control(remote, name, value=None, **headers):
    body = {"name": name} if value is None else {"name": name, "value": value}
    return request(remote, "POST", "/api/control", body, **headers)


def test_without_the_token_or_with_a_wrong_one_nothing_changes(served):
    remote, controls = served
    version = controls.version
    assert control(remote, "pause", True)[0] == 401
    assert control(remote, "next")[0] == 401
    assert control(remote, "pause", True, **bearer("wrong-token-wrong-token"))[0] == 403
    assert control(remote, "pause", True, Authorization="Basic " + TOKEN)[0] == 403
    assert control(remote, "pause", True, Cookie=f"{COOKIE}=made-up-session")[0] in (401, 403)
    assert request(remote, "POST", "/api/login", {"token": "wrong-token-wrong-token"})[0] == 403
    assert request(remote, "POST", "/api/login", {})[0] == 401
    for path in ("/health", "/api/status", "/api/thumbnail.jpg"):
        assert request(remote, "GET", path)[0] == 401, path
    assert controls.version == version and controls.get("pause") is False
    assert controls.drain_triggers() == {} and remote.controls_applied == 0
    assert request(remote, "GET", "/")[0] == 200  # the page itself holds no secret


def test_the_token_and_a_login_session_drive_the_control_state_with_its_validation(served):
    remote, controls = served
    status, _, body = control(remote, "pause", True, **bearer())
    assert status == 200 and json.loads(body)["applied"] is True
    assert controls.get("pause") is True and controls.record("pause").source == "remote"
    status, headers, _ = request(remote, "POST", "/api/login", {"token": TOKEN},
                                 Origin=f"http://127.0.0.1:{remote.port}")
    cookie = headers["set-cookie"]
    assert status == 200 and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie
    session = cookie.split(";")[0]
    same_origin = {"Cookie": session, "Origin": f"http://127.0.0.1:{remote.port}"}
    assert control(remote, "next", **same_origin)[0] == 200
    assert controls.drain_triggers() == {"next": 1}
    status, _, body = control(remote, "speed", 50, **same_origin)  # the same clamping as keys and OSC
    assert status == 200 and json.loads(body) == {"name": "speed", "applied": 10.0, "clamped": True, "held": False}
    status, _, body = control(remote, "speed", "fast", **same_origin)
    assert status == 400 and "expected a finite number in 0..10" in json.loads(body)["error"]
    assert control(remote, "truncation", 0.5, **same_origin)[0] == 400  # not one of the remote's controls
    assert controls.get("speed") == 10.0 and controls.get("truncation") == 1.0
    status, _, body = request(remote, "GET", "/api/status", Cookie=session)
    assert status == 200 and json.loads(body)["controls"]["pause"] is True
    request(remote, "POST", "/api/logout", {}, **same_origin)
    assert control(remote, "next", **same_origin)[0] == 401


def test_cross_origin_and_rebound_host_requests_are_refused(served):
    remote, controls = served
    _, headers, _ = request(remote, "POST", "/api/login", {"token": TOKEN})
    session = headers["set-cookie"].split(";")[0]
    evil = {"Origin": "http://evil.example"}
    assert control(remote, "pause", True, Cookie=session, **evil)[0] == 403
    assert control(remote, "pause", True, **bearer(), **evil)[0] == 403
    assert control(remote, "pause", True, Cookie=session, Origin="null")[0] == 403
    assert control(remote, "pause", True, Cookie=session)[0] == 403  # a browser's POST always carries an Origin
    assert control(remote, "pause", True, Cookie=session, Sec_Fetch_Site="cross-site")[0] == 403
    form = request(remote, "POST", "/api/control", b"name=pause&value=1", Cookie=session,
                   Origin=f"http://127.0.0.1:{remote.port}", Content_Type="application/x-www-form-urlencoded")
    assert form[0] == 415
    preflight = request(remote, "OPTIONS", "/api/control", Origin="http://evil.example",
                        Access_Control_Request_Method="POST")
    assert preflight[0] == 405 and "access-control-allow-origin" not in preflight[1]
    rebound = request(remote, "GET", "/api/status", host=f"evil.example:{remote.port}", **bearer())
    assert rebound[0] == 421
    assert controls.get("pause") is False and controls.drain_triggers() == {}


def test_controls_are_rate_limited_per_client(tmp_path):
    remote, controls = make_remote(tmp_path, remote_control_burst=3, remote_control_rate=0.2)
    try:
        answers = [control(remote, "next", **bearer()) for _ in range(6)]
        assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429, 429]
        assert answers[3][1]["retry-after"] == "1"
        assert controls.drain_triggers() == {"next": 3}
        assert request(remote, "POST", "/api/login", {"token": TOKEN})[0] == 429  # guessing tokens too
    finally:
        remote.stop()


def test_the_server_binds_loopback_only_unless_configured(tmp_path):
    remote, _ = make_remote(tmp_path)
    try:
        assert remote.address[0] == "127.0.0.1"
        with pytest.raises(ConnectionRefusedError):  # another loopback address: not listening on 0.0.0.0
            socket.create_connection(("127.0.0.2", remote.port), timeout=2).close()
        for address in other_addresses():
            with pytest.raises(OSError):
                socket.create_connection((address, remote.port), timeout=2).close()
    finally:
        remote.stop()
    remote, _ = make_remote(tmp_path, remote_host="0.0.0.0")
    try:
        socket.create_connection(("127.0.0.2", remote.port), timeout=2).close()  # configured: all interfaces
    finally:
        remote.stop()


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (none in a bare container)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos if not info[4][0].startswith("127.")})


def test_clients_outside_the_allowed_networks_are_refused(tmp_path):
    remote, controls = make_remote(tmp_path, remote_allow="10.0.0.0/8, 192.168.1.20")
    try:
        assert control(remote, "pause", True, **bearer())[0] == 403
        assert request(remote, "GET", "/")[0] == 403
        assert controls.get("pause") is False
    finally:
        remote.stop()
    remote, controls = make_remote(tmp_path, remote_allow="127.0.0.0/8")
    try:
        assert control(remote, "pause", True, **bearer())[0] == 200
    finally:
        remote.stop()
    with pytest.raises(ValueError, match="remote_allow entry 'gallery' is not an IP address"):
        make_remote(tmp_path, remote_allow="gallery")


def test_open_status_serves_reading_without_the_token_but_never_controls(tmp_path):
    remote, controls = make_remote(tmp_path, remote_open_status=True)
    try:
        health = Health(started=time.monotonic(), bundle="assets/models/default")
        heartbeat = Heartbeat("", 5.0)
        remote.publish(heartbeat.document(health, heartbeat.state(health)))
        status, _, body = request(remote, "GET", "/health")
        assert status == 200
        assert set(json.loads(body)) == set(heartbeat.document(health, "running"))  # the status file's fields
        assert request(remote, "GET", "/api/status")[0] == 200
        assert control(remote, "pause", True)[0] == 401 and controls.get("pause") is False
    finally:
        remote.stop()


def test_the_live_view_is_encoded_at_most_at_its_rate_from_the_latest_frame(served):
    remote, _ = served
    assert request(remote, "GET", "/api/thumbnail.jpg", **bearer())[0] == 503  # nothing shown yet
    for value in range(100):  # the display loop hands over far more frames than the remote encodes
        remote.offer_frame(np.full((512, 384, 3), value, np.uint8))
    status, headers, body = request(remote, "GET", "/api/thumbnail.jpg", **bearer())
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert picture.shape == (320, 240, 3) and abs(int(picture.mean()) - 99) <= 2  # the latest frame, scaled down
    for value in range(20):
        remote.offer_frame(np.full((512, 384, 3), value, np.uint8))
        request(remote, "GET", "/api/thumbnail.jpg", **bearer())
    assert remote.frames.encodings <= 3  # 2 a second at most
    etag = headers["etag"]
    time.sleep(0.6)
    assert request(remote, "GET", "/api/thumbnail.jpg", If_None_Match=etag, **bearer())[0] in (200, 304)


def test_the_token_file_is_made_readable_only_by_the_user_and_reused(tmp_path):
    path = tmp_path / "secrets" / "remote-token"
    config = RuntimeConfig(remote=True, remote_token_file=str(path))
    token = load_token(config)
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(config) == token
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="can be read by other users .*chmod 600"):
        load_token(config)
    with pytest.raises(ValueError, match="at least 16 characters"):
        RuntimeConfig(remote_token="short")


class QueuedPresets:
    """The interface of installation/presets.py's Presets the remote uses: names, and a queued recall."""

    def __init__(self, names):
        self.presets = dict.fromkeys(names)
        self.requests = []

    def request(self, action, raw_key, source):
        if raw_key not in self.presets:
            raise ValueError(f"no preset {raw_key!r}")
        self.requests.append((action, raw_key, source))
        return raw_key


def test_presets_are_listed_and_recalled_as_the_remote(tmp_path):
    presets = QueuedPresets(["dawn", "storm"])
    config = RuntimeConfig(remote=True, remote_port=free_port(), remote_token=TOKEN, osc=False)
    remote = Remote(config, ControlState(), presets=presets).start()
    try:
        status, _, body = request(remote, "GET", "/api/status", **bearer())
        assert json.loads(body)["presets"] == ["dawn", "storm"]
        assert request(remote, "POST", "/api/preset", {"name": "storm"})[0] == 401
        assert request(remote, "POST", "/api/preset", {"name": "fog"}, **bearer())[0] == 404
        assert request(remote, "POST", "/api/preset", {"name": "storm"}, **bearer())[0] == 200
        assert presets.requests == [("recall", "storm", "remote")]
    finally:
        remote.stop()


def test_check_reports_a_busy_port_and_where_the_token_is(tmp_path):
    from installation.remote import RemoteStartError, check_remote

    port = free_port()
    config = RuntimeConfig(remote=True, remote_port=port, remote_token_file=str(tmp_path / "token"))
    assert check_remote(config) == f"TCP 127.0.0.1:{port} is free, a token will be written to {tmp_path / 'token'}"
    load_token(config)
    assert check_remote(config).endswith(f"token in {tmp_path / 'token'}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_remote(config)
        with pytest.raises(RemoteStartError, match="choose another remote_port"):
            Remote(config, ControlState()).start()
