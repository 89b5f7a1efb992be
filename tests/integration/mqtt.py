"""An MQTT broker for the connector tests, and uplinks as The Things Stack sends them.

``Mosquitto`` runs Debian's ``/usr/sbin/mosquitto`` on a free loopback port with a config
it writes into its own directory: anonymous by default, or with a user and password
(``mosquitto_passwd``), and optionally a second, TLS listener whose CA and server
certificate (for ``127.0.0.1`` and ``localhost``) are made with the ``openssl`` CLI.
Messages are published with Eclipse Paho (``paho-mqtt``), QoS 1 by default, each waited
for until the broker has acknowledged it (PUBACK).

``ttn_uplink`` builds an uplink message in the shape The Things Stack v3 publishes on
``v3/{application}@{tenant}/devices/{device}/up``. No pytest in here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import pwd
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from conftest import free_port, wait_until

MOSQUITTO = os.environ.get("URBANMESH_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = os.environ.get("URBANMESH_MOSQUITTO_PASSWD", "mosquitto_passwd")
STARTUP_DEADLINE = 15.0
STOP_DEADLINE = 10.0
PUBLISH_DEADLINE = 30.0
LOG_TAIL_BYTES = 20_000

# Brokers running now, so that a failing test can show their logs (conftest's report hook).
LIVE_BROKERS: list["Mosquitto"] = []

Payload = bytes | str | dict | list


def encode_payload(payload: Payload) -> bytes:
    """Bytes as they are, text as UTF-8, a dict or list as JSON."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}): {result.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signed for 127.0.0.1 and localhost (EC P-256,
    X.509 v3 with the extensions WebPKI verifiers insist on). Returns (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    curve = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    openssl("genpkey", *curve, "-out", str(ca_key), cwd=directory)
    openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "2", "-subj", "/O=Urban Mesh tests/CN=Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash", "-out", str(ca), cwd=directory,
    )
    openssl("genpkey", *curve, "-out", str(key), cwd=directory)
    openssl("req", "-new", "-key", str(key), "-subj", "/O=Urban Mesh tests/CN=localhost", "-out", str(csr),
            cwd=directory)
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-sha256",
        "-days", "2", "-extfile", str(extensions), "-out", str(cert), cwd=directory,
    )
    return ca, cert, key


class Mosquitto:
    """Debian's mosquitto in `directory`, on loopback.

    ``port`` is the plain listener (``url`` = ``mqtt://127.0.0.1:PORT``); with ``tls`` also
    ``tls_port`` (``tls_url`` = ``mqtts://localhost:TLS_PORT``) with the server certificate
    of the CA in ``ca_file``. With ``username`` and ``password`` anonymous clients are refused
    on both listeners; ``publish`` signs in with them. Sessions persist in ``directory`` across
    ``restart`` (stopped with SIGTERM, mosquitto writes them out), on the same ports.
    """

    def __init__(self, directory: Path, username: str | None = None, password: str | None = None,
                 tls: bool = False, persistence: bool = True):
        assert (username is None) == (password is None), "a user needs a password and the other way round"
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.username, self.password = username, password
        self.tls = tls
        self.persistence = persistence
        self.port: int | None = None
        self.tls_port: int | None = None
        self.ca_file: Path | None = None
        self.config_path = self.directory / "mosquitto.conf"
        self.log_path = self.directory / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._client = None
        self._client_lock = threading.Lock()
        self.starts = 0

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        assert self.tls, "no TLS listener"
        return f"mqtts://localhost:{self.tls_port}"

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "max_inflight_messages 1000",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        if os.getuid() == 0:
            # As root mosquitto would switch to the user `mosquitto`, who cannot read this directory.
            lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.directory}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        if self.username is not None:
            password_file = self.directory / "passwords"
            if not password_file.exists():
                result = subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", "-c", str(password_file), self.username, self.password],
                    capture_output=True, text=True, timeout=30,
                )
                if result.returncode != 0:
                    raise RuntimeError(f"mosquitto_passwd failed ({result.returncode}): {result.stderr}")
                password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            if self.ca_file is None:
                self.ca_file, self._cert, self._key = make_certificates(self.directory / "tls")
            lines += [
                "",
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.ca_file}",
                f"certfile {self._cert}",
                f"keyfile {self._key}",
                "tls_version tlsv1.2",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = STARTUP_DEADLINE) -> "Mosquitto":
        """Starts the broker (on new free ports the first time, on the same ones after) and
        waits until every listener accepts connections."""
        assert not self.running, "mosquitto already running"
        fresh = self.port is None
        for attempt in range(5):
            if fresh:
                self.port = free_port()
                self.tls_port = free_port() if self.tls else None
            self._write_config()
            self.starts += 1
            self._log = open(self.log_path, "ab")
            self._log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
            self._log.flush()
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            )
            if self not in LIVE_BROKERS:
                LIVE_BROKERS.append(self)
            try:
                wait_until(self._listening, timeout, f"mosquitto to listen on {self.ports}")
                return self
            except _Exited:
                self._close_log()
                # Another process took a "free" port in between: new ports, once more.
                if fresh and "Address already in use" in self.log_tail(2000) and attempt < 4:
                    continue
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode} on start:\n{self.log_tail()}")
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen within {timeout}s:\n{self.log_tail()}")
        raise AssertionError("unreachable")

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.port, self.tls_port) if p is not None]

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise _Exited()
        for port in self.ports:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
            except OSError:
                return False
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_DEADLINE) -> None:
        """Stops the broker with SIGTERM (it writes out its sessions) and the publishing client."""
        self._disconnect_client()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"mosquitto did not stop within {timeout}s:\n{self.log_tail()}")
        self._close_log()

    def restart(self) -> "Mosquitto":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self in LIVE_BROKERS:
            LIVE_BROKERS.remove(self)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def subscriptions(self) -> list[tuple[str, int, str]]:
        """Every subscription the broker logged, across its starts: (client id, QoS, filter)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [(m.group(1), int(m.group(2)), m.group(3))
                for m in re.finditer(r"^[\d:]+: (\S+) ([012]) (\S+)$", text, re.M)]

    def wait_subscribed(self, topic_filter: str, count: int = 1, timeout: float = 30.0) -> str:
        """Waits until `topic_filter` has been subscribed to `count` times (by anyone, across
        starts); returns the client id of the last such subscription."""
        def subscribed():
            matching = [client for client, _, f in self.subscriptions() if f == topic_filter]
            return matching[-1] if len(matching) >= count else None

        try:
            return wait_until(subscribed, timeout, f"a subscription to {topic_filter!r}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; broker log:\n{self.log_tail(4000)}") from None

    # ---- publishing ------------------------------------------------------------------------

    def client(self, client_id: str = "", clean: bool = True, tls: bool = False, username: str | None = None,
               password: str | None = None, on_message=None, timeout: float = STARTUP_DEADLINE):
        """A connected Paho client (MQTT 3.1.1, network loop in its own thread), signed in with
        the broker's user unless `username` is given; `on_message` is set before it connects,
        so that nothing a persistent session had queued passes by unseen. The caller
        disconnects it."""
        import paho.mqtt.client as paho

        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                             protocol=paho.MQTTv311)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        user = username if username is not None else self.username
        if user is not None:
            client.username_pw_set(user, password if username is not None else self.password)
        if tls:
            client.tls_set(ca_certs=str(self.ca_file))
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                refused.append(str(reason_code))
            connected.set()

        client.on_connect = on_connect
        if on_message is not None:
            client.on_message = on_message
        client.connect("localhost" if tls else "127.0.0.1", self.tls_port if tls else self.port, keepalive=30)
        client.loop_start()
        if not connected.wait(timeout) or refused:
            client.loop_stop()
            client.disconnect()
            raise RuntimeError(f"MQTT client could not connect to {self.ports}: {refused or 'no CONNACK'}")
        return client

    def _publisher(self):
        with self._client_lock:
            if self._client is None or not self._client.is_connected():
                self._disconnect_client_locked()
                self._client = self.client(client_id=f"urbanmesh-test-publisher-{os.getpid()}-{self.starts}")
            return self._client

    def _disconnect_client(self) -> None:
        with self._client_lock:
            self._disconnect_client_locked()

    def _disconnect_client_locked(self) -> None:
        if self._client is not None:
            try:
                self._client.disconnect()
                self._client.loop_stop()
            except Exception:
                pass
            self._client = None

    def publish(self, topic: str, payload: Payload, qos: int = 1, retain: bool = False,
                timeout: float = PUBLISH_DEADLINE) -> None:
        """Publishes one message and waits until the broker acknowledged it (QoS 1 and 2)."""
        self.publish_many([(topic, payload)], qos=qos, retain=retain, timeout=timeout)

    def publish_many(self, messages: Iterable[tuple[str, Payload]], qos: int = 1, retain: bool = False,
                     timeout: float = PUBLISH_DEADLINE) -> int:
        """Publishes (topic, payload) pairs in order, then waits until the broker acknowledged
        every one; returns how many. Raises if any is not acknowledged within `timeout`."""
        import paho.mqtt.client as paho

        client = self._publisher()
        infos = []
        for topic, payload in messages:
            info = client.publish(topic, encode_payload(payload), qos=qos, retain=retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publishing to {topic!r} failed: {paho.error_string(info.rc)}")
            infos.append(info)
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                unacked = sum(1 for i in infos if not i.is_published())
                raise TimeoutError(
                    f"{unacked} of {len(infos)} messages not acknowledged by the broker within {timeout}s:\n"
                    + self.log_tail(4000)
                )
        return len(infos)


class _Exited(Exception):
    pass


# ---- The Things Stack v3 -------------------------------------------------------------------

TTN_TENANT = "ttn"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ttn_topic(device_id: str, app: str = "flood-app", event: str = "up") -> str:
    """The topic The Things Stack publishes a device's uplinks on."""
    return f"v3/{app}@{TTN_TENANT}/devices/{device_id}/{event}"


def rfc3339_nanos(instant: dt.datetime, nanos: int = 0) -> str:
    """`instant` in UTC as The Things Stack writes times: nine fractional digits and `Z`;
    `nanos` (0–999) are the digits below the microsecond."""
    assert instant.tzinfo is not None, "an aware datetime, please"
    assert 0 <= nanos < 1000
    utc = instant.astimezone(dt.timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}{nanos:03d}Z"


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


def _ulid(instant: dt.datetime, *seed: Any) -> str:
    """A ULID (48-bit milliseconds, 80 bits from `seed`) in Crockford base 32, as TTS's ids."""
    value = (int(instant.timestamp() * 1000) << 80) | int.from_bytes(_digest(*seed)[:10], "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def frm_payload(decoded: dict) -> bytes:
    """Raw bytes a device might have sent for `decoded`: each number, in key order, as a
    big-endian float32 (booleans a byte, text its UTF-8). The connector reads the decoded
    payload; these only make the message realistic."""
    out = b""
    for key in sorted(decoded):
        value = decoded[key]
        if isinstance(value, bool):
            out += bytes([value])
        elif isinstance(value, (int, float)):
            out += struct.pack(">f", float(value))
        elif isinstance(value, str):
            out += value.encode()[:16]
    return out


def ttn_uplink(device_id: str, f_cnt: int, received_at: dt.datetime, decoded: dict | None,
               app: str = "flood-app", f_port: int = 1, rssi: int = -97, snr: float = 7.25,
               gateways: int = 2) -> dict:
    """An uplink message as The Things Stack v3 publishes it (`v3/{app}@ttn/devices/{device}/up`).

    The top-level `received_at` (the Application Server's time) is `received_at`, written with
    nine fractional digits; the Network Server received it 18 ms earlier
    (`uplink_message.received_at`) and the gateways before that, so a mapping that took the
    wrong time would be caught. `rx_metadata[0]` is the gateway with `rssi` and `snr`, the
    others are weaker. `decoded` is the payload formatter's output (`decoded_payload`), left
    out when None.
    """
    device_digest = _digest("device", app, device_id)
    dev_eui = ("70B3D57ED0" + device_digest[:3].hex()).upper()
    dev_addr = ("26" + device_digest[3:6].hex()).upper()
    nanos = (f_cnt * 37) % 1000
    as_time = received_at.astimezone(dt.timezone.utc)
    ns_time = as_time - dt.timedelta(milliseconds=18)
    gs_time = as_time - dt.timedelta(milliseconds=41)
    frequency = ["868100000", "868300000", "868500000", "867100000", "867300000"][f_cnt % 5]
    spreading_factor = 7 + (f_cnt % 3)
    rx_metadata = []
    for index in range(gateways):
        gateway_id = f"owl-gw-{index + 1:02d}"
        rx_metadata.append({
            "gateway_ids": {"gateway_id": gateway_id, "eui": ("B827EBFFFE" + _digest(gateway_id)[:3].hex()).upper()},
            "time": rfc3339_nanos(gs_time, nanos),
            "timestamp": (int(gs_time.timestamp() * 1_000_000) + index * 7) % (1 << 32),
            "rssi": rssi - 9 * index,
            "channel_rssi": rssi - 9 * index,
            "snr": round(snr - 2.5 * index, 2),
            "location": {"latitude": 51.9386 + index / 100, "longitude": 8.8791, "altitude": 130, "source": "SOURCE_REGISTRY"},
            "uplink_token": base64.b64encode(_digest("token", gateway_id, device_id, f_cnt)[:24]).decode(),
            "channel_index": f_cnt % 8,
            "received_at": rfc3339_nanos(gs_time + dt.timedelta(milliseconds=3), nanos),
        })
    uplink: dict[str, Any] = {
        "session_key_id": base64.b64encode(_digest("session", device_id)[:16]).decode(),
        "f_port": f_port,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(frm_payload(decoded or {})).decode(),
    }
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    uplink.update({
        "rx_metadata": rx_metadata,
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": spreading_factor, "coding_rate": "4/5"}},
            "frequency": frequency,
            "timestamp": rx_metadata[0]["timestamp"] if rx_metadata else 0,
            "time": rfc3339_nanos(gs_time, nanos),
        },
        "received_at": rfc3339_nanos(ns_time, nanos),
        "consumed_airtime": f"{[0.051456, 0.102912, 0.205824][spreading_factor - 7]:.6f}s",
        "network_ids": {"net_id": "000013", "ns_id": "EC656E0000000181", "tenant_id": TTN_TENANT,
                        "cluster_id": "eu1", "cluster_address": "eu1.cloud.thethings.network"},
    })
    return {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": app},
            "dev_eui": dev_eui,
            "join_eui": "0000000000000000",
            "dev_addr": dev_addr,
        },
        "correlation_ids": [
            f"as:up:{_ulid(as_time, 'as', device_id, f_cnt)}",
            f"gs:conn:{_ulid(as_time - dt.timedelta(hours=5), 'conn', app)}",
            f"gs:up:host:{_ulid(gs_time, 'host', device_id, f_cnt)}",
            f"gs:uplink:{_ulid(gs_time, 'gs', device_id, f_cnt)}",
            f"ns:uplink:{_ulid(ns_time, 'ns', device_id, f_cnt)}",
            f"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:{_ulid(ns_time, 'rpc', device_id, f_cnt)}",
            f"rpc:/ttn.lorawan.v3.NsAs/HandleUplink:{_ulid(as_time, 'rpc-as', device_id, f_cnt)}",
        ],
        "received_at": rfc3339_nanos(as_time, nanos),
        "uplink_message": uplink,
    }
