"""Connectors: the node subscribes to MQTT brokers (The Things Stack v3 uplinks, plain JSON)
and pulls PEGELONLINE-shaped and generic JSON APIs, storing rows into datasets.

A real mosquitto (tests/integration/mqtt.py) and fixture HTTP APIs
(tests/integration/pegelonline.py) stand in for the sources. Every wait has a deadline;
every row that should arrive is compared in full, and every one that should not is
looked for."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import threading

import pytest
from conftest import Response, parse_time, pegel_spec, wait_until
from mqtt import Mosquitto, ttn_topic, ttn_uplink
from pegelonline import parse_instant

UTC = dt.timezone.utc
DEADLINE = 30.0
API = "/api/v1/connectors"
TTN_FILTER = "v3/+/devices/+/up"
STATES = {"connecting", "connected", "retrying", "pulling", "waiting", "stopped"}
BASE_TIME = dt.datetime(2026, 12, 4, 5, 0, tzinfo=UTC)

# Uplinks of water-level sensors: the level in cm, the battery (not every device sends it),
# the RSSI at the best gateway.
TTN_SPEC = {
    "title": "Hochwassersensoren Detmold",
    "description": "Pegelsensoren an Werre und Bega, LoRaWAN über The Things Stack",
    "schema": {
        "fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "device", "type": "utf8"},
            {"name": "level", "type": "float64", "unit": "cm"},
            {"name": "battery", "type": "float64", "unit": "V", "nullable": True},
            {"name": "rssi", "type": "int64", "unit": "dBm", "nullable": True},
        ]
    },
    "time_column": "time",
    "series_key": "device",
    "policy": {"visibility": "public"},
}

TTN_MAPPING = {
    # `time` <- received_at, `level` and `battery` <- uplink_message.decoded_payload.* by default.
    "columns": {"device": "end_device_ids.device_id", "rssi": "uplink_message.rx_metadata[0].rssi"},
    "key": ["device", "time"],
}


# ---- helpers ----------------------------------------------------------------------------


def ttn_dataset(node, dataset_id: str) -> str:
    node.create_dataset({"id": dataset_id, **json.loads(json.dumps(TTN_SPEC))})
    return dataset_id


def mqtt_connector(connector_id: str, dataset: str, url: str, **fields) -> dict:
    return {"id": connector_id, "dataset": dataset, "kind": "mqtt", "url": url, "topic": TTN_FILTER,
            "format": "ttn", "mapping": json.loads(json.dumps(TTN_MAPPING)), **fields}


def put_json(node, path: str, obj, auth: bool = True) -> Response:
    return node.request("PUT", path, json.dumps(obj).encode(), {"Content-Type": "application/json"}, auth=auth)


def create(node, connector: dict) -> dict:
    """POSTs `connector`, asserts 201 with its Location, returns the body."""
    response = node.post_json(API, connector)
    assert response.status == 201, f"creating connector {connector.get('id')!r}: {response!r}"
    location = response.headers.get("Location") or ""
    assert location.endswith(f"{API}/{connector['id']}"), f"Location {location!r}"
    body = response.json()
    assert_connector(body, connector)
    return body


def get_connector(node, connector_id: str) -> dict:
    response = node.get(f"{API}/{connector_id}", auth=True)
    assert response.status == 200, response
    return response.json()


def status_of(node, connector_id: str) -> dict:
    return get_connector(node, connector_id)["status"]


def list_connectors(node) -> dict[str, dict]:
    response = node.get(API, auth=True)
    assert response.status == 200, response
    connectors = response.json()["connectors"]
    return {c["id"]: c for c in connectors}


def assert_status_shape(status: dict) -> None:
    assert status["state"] in STATES, status
    assert status["last_message"] is None or parse_time(status["last_message"]), status
    assert status["last_error"] is None or isinstance(status["last_error"], str), status
    for counter in ("messages", "stored", "duplicates", "rejected"):
        assert isinstance(status[counter], int) and status[counter] >= 0, status
    assert isinstance(status["dead_letters"], list) and len(status["dead_letters"]) <= 100, status
    for letter in status["dead_letters"]:
        assert set(letter) >= {"at", "topic", "reason", "payload"}, letter
        parse_time(letter["at"])
        assert isinstance(letter["reason"], str) and letter["reason"].strip(), letter
        assert letter["topic"] is None or isinstance(letter["topic"], str), letter
        assert isinstance(letter["payload"], str), letter


def assert_connector(body: dict, sent: dict) -> None:
    """The connector as answered: what was sent (but never the password), and its status."""
    assert "password" not in body, f"the password came back: {body}"
    for key, value in sent.items():
        if key != "password":
            assert body.get(key) == value, f"{key}: sent {value!r}, answered {body.get(key)!r}"
    assert_status_shape(body["status"])


def wait_status(node, connector_id: str, condition, what: str, timeout: float = DEADLINE) -> dict:
    """Polls the connector's status until `condition(status)` holds; the failure names the last status."""
    last: dict = {}

    def check():
        last["status"] = status_of(node, connector_id)
        return last["status"] if condition(last["status"]) else None

    try:
        return wait_until(check, timeout, what)
    except TimeoutError as error:
        raise AssertionError(f"{connector_id}: {error}; last status: {json.dumps(last.get('status'))}") from None


def read_rows(node, dataset: str) -> list[dict]:
    response = node.read_rows(dataset, "json")
    assert response.status == 200, response
    rows = response.json()
    for row in rows:
        value = row["time"]
        row["time"] = dt.datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int) else parse_time(value)
    return rows


def rows_by_key(rows: list[dict], *key: str) -> dict[tuple, dict]:
    keyed = {tuple(row[k] for k in key): row for row in rows}
    assert len(keyed) == len(rows), f"{len(rows) - len(keyed)} rows stored twice under {key}"
    return keyed


def connector_metric(node, connector_id: str, outcome: str) -> float | None:
    text = node.get("/metrics", auth=True).text
    # Messages accepted or rejected; rows stored or left out as duplicates.
    for match in re.finditer(r"^urbanmesh_connector_(?:messages|rows)_total\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
        if labels.get("connector") == connector_id and labels.get("outcome") == outcome:
            return float(match.group(2))
    return None


def uplink_values(device: int, f_cnt: int) -> dict:
    decoded = {"level": round(150 + device * 40 + f_cnt * 0.5, 1)}
    if device != 2:  # device 2 reports no battery
        decoded["battery"] = round(3.6 - f_cnt * 0.01, 2)
    return decoded


def expected_row(device_id: str, device: int, f_cnt: int, at: dt.datetime, rssi: int) -> dict:
    decoded = uplink_values(device, f_cnt)
    return {"time": at, "device": device_id, "level": decoded["level"], "battery": decoded.get("battery"),
            "rssi": rssi}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def connector_toml(connector: dict) -> str:
    """`connector` as a `[[connectors]]` table of config.toml, its mapping as `[connectors.mapping]`."""
    lines = ["", "[[connectors]]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in connector.items() if key != "mapping"]
    if "mapping" in connector:
        lines.append("[connectors.mapping]")
        lines += [f"{key} = {toml_value(value)}" for key, value in connector["mapping"].items()]
    return "\n".join(lines) + "\n"


# ---- MQTT: The Things Stack uplinks ---------------------------------------------------------


def test_ttn_uplinks_of_three_devices_are_stored(node, mosquitto):
    dataset = ttn_dataset(node, "hochwasser-detmold")
    connector = mqtt_connector("detmold-lora", dataset, mosquitto.url)
    created = create(node, connector)
    assert created["status"]["stored"] == 0 and created["status"]["dead_letters"] == [], created
    mosquitto.wait_subscribed(TTN_FILTER)

    devices = {"werre-pegel-01": -87, "bega-pegel-02": -101, "werre-pegel-03": -112}
    messages, expected = [], []
    for device, (device_id, rssi) in enumerate(devices.items()):
        for f_cnt in range(4):
            at = BASE_TIME + dt.timedelta(minutes=15 * f_cnt, seconds=device)
            uplink = ttn_uplink(device_id, f_cnt, at, uplink_values(device, f_cnt), rssi=rssi)
            messages.append((ttn_topic(device_id), uplink))
            expected.append(expected_row(device_id, device, f_cnt, at, rssi))
    mosquitto.publish_many(messages)

    status = wait_status(node, "detmold-lora", lambda s: s["stored"] >= 12, "12 rows stored")
    rows = read_rows(node, dataset)
    key = ("device", "time")
    assert rows_by_key(rows, *key) == rows_by_key(expected, *key)
    assert node.rows_count(dataset) == 12

    assert status["state"] == "connected", status
    assert (status["messages"], status["stored"], status["duplicates"], status["rejected"]) == (12, 12, 0, 0), status
    assert status["dead_letters"] == [] and status["last_error"] is None, status
    last = parse_time(status["last_message"])
    assert abs((dt.datetime.now(UTC) - last).total_seconds()) < 120, status

    listed = list_connectors(node)
    assert set(listed) == {"detmold-lora"}, listed
    assert_connector(listed["detmold-lora"], connector)
    assert connector_metric(node, "detmold-lora", "stored") == 12
    assert connector_metric(node, "detmold-lora", "duplicate") in (None, 0)
    assert connector_metric(node, "detmold-lora", "rejected") in (None, 0)


def test_an_uplink_published_again_is_stored_once(node, mosquitto):
    dataset = ttn_dataset(node, "hochwasser-doppelt")
    create(node, mqtt_connector("doppelt", dataset, mosquitto.url, client_id="urbanmesh-doppelt"))
    mosquitto.wait_subscribed(TTN_FILTER)

    def uplink(f_cnt):
        at = BASE_TIME + dt.timedelta(minutes=15 * f_cnt)
        return ttn_topic("werre-pegel-01"), ttn_uplink("werre-pegel-01", f_cnt, at, uplink_values(0, f_cnt), rssi=-90)

    a, b, c = uplink(0), uplink(1), uplink(2)
    mosquitto.publish_many([a, b, a])
    wait_status(node, "doppelt", lambda s: s["stored"] == 2 and s["duplicates"] == 1, "2 stored, 1 duplicate")

    # The broker goes away and comes back (the session persists): the node reconnects,
    # and the old uplink sent once more is still a duplicate.
    mosquitto.restart()
    mosquitto.publish_many([a, c])
    status = wait_status(
        node, "doppelt", lambda s: s["stored"] == 3 and s["duplicates"] >= 2 and s["state"] == "connected",
        "C stored and A counted as a duplicate again after the reconnect",
    )
    rows = read_rows(node, dataset)
    assert sorted((r["device"], r["time"], r["level"]) for r in rows) == [
        ("werre-pegel-01", BASE_TIME + dt.timedelta(minutes=15 * n), uplink_values(0, n)["level"]) for n in range(3)
    ]
    # Every message was either stored (one row each) or a duplicate; a message the broker
    # redelivered because the restart cut off its acknowledgement counts as a duplicate too.
    assert status["messages"] == status["stored"] + status["duplicates"], status
    assert status["rejected"] == 0 and status["dead_letters"] == [], status
    assert connector_metric(node, "doppelt", "duplicate") == status["duplicates"]


JSON_MAPPING = {
    "columns": {"time": "t", "device": "id", "level": "m.level", "battery": "m.battery",
                "rssi": "radio[0].rssi"},
    "key": ["device", "time"],
}


def json_row(device: str, minute: int, level: float, rssi: int = -90, **extra) -> dict:
    at = BASE_TIME + dt.timedelta(minutes=minute)
    return {"id": device, "t": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "m": {"level": level}, "radio": [{"rssi": rssi}],
            **extra}


# (topic suffix, payload, what the reason must name)
MALFORMED = [
    ("not-json", b"level=12.5;device=s1", r"(?i)json"),
    ("empty", b"", r"(?i)json|empty"),
    ("not-utf8", b'{"id": "s\xff\xfe1", "t": "2026-12-04T05:00:00Z", "m": {"level": 1}}', r"(?i)utf-?8|unicode"),
    ("array-of-numbers", b"[1, 2, 3]", r"(?i)object"),
    ("missing-path", {"id": "s1", "t": "2026-12-04T05:10:00Z", "m": {}, "radio": [{"rssi": -90}]},
     r"level|m\.level"),
    ("null-level", {"id": "s1", "t": "2026-12-04T05:11:00Z", "m": {"level": None}, "radio": [{"rssi": -90}]},
     r"level|m\.level"),
    ("string-for-float", json_row("s1", 12, "hoch"), r"level|m\.level"),
    ("out-of-range", json_row("s1", 13, 12.5, rssi=1e30), r"rssi|radio\[0\]\.rssi"),
    ("not-a-time", {**json_row("s1", 14, 12.5), "t": "gestern"}, r"\btime\b|\bt\b"),
    ("too-large", {**json_row("s1", 15, 12.5), "padding": "x" * (300 * 1024)}, r"(?i)large|size|bytes|KiB|limit"),
    # One good row and one bad one: the message is refused as a whole.
    ("mixed", [json_row("s9", 16, 40.0), json_row("s9", 17, "viel")], r"level|m\.level"),
]


def test_malformed_messages_become_dead_letters_and_the_rest_flows(node, mosquitto):
    dataset = ttn_dataset(node, "sensoren-json")
    create(node, {"id": "sensoren", "dataset": dataset, "kind": "mqtt", "url": mosquitto.url,
                  "topic": "sensors/#", "format": "json", "mapping": JSON_MAPPING})
    mosquitto.wait_subscribed("sensors/#")

    mosquitto.publish("sensors/good/first", json_row("s1", 0, 10.5, rssi=-80))
    wait_status(node, "sensoren", lambda s: s["stored"] == 1, "the first good row")
    bad_topics = [f"sensors/bad/{name}" for name, _, _ in MALFORMED]
    mosquitto.publish_many([(topic, payload) for topic, (_, payload, _) in zip(bad_topics, MALFORMED)])
    mosquitto.publish_many([
        ("sensors/good/second", json_row("s2", 1, 20.25, rssi=-95, note="extra members are ignored")),
        ("sensors/good/third", [json_row("s1", 2, 11.0, rssi=-81), json_row("s3", 2, 30.0, rssi=-99)]),
    ])

    status = wait_status(
        node, "sensoren", lambda s: s["stored"] == 4 and s["rejected"] == len(MALFORMED),
        f"4 good rows stored and {len(MALFORMED)} messages rejected",
    )
    assert (status["messages"], status["duplicates"]) == (3 + len(MALFORMED), 0), status
    letters = status["dead_letters"]
    assert [letter["topic"] for letter in letters] == bad_topics[::-1], "dead letters, newest first: " + json.dumps(
        [(letter["topic"], letter["reason"]) for letter in letters])
    times = [parse_time(letter["at"]) for letter in letters]
    assert times == sorted(times, reverse=True), times
    for letter, (name, payload, reason) in zip(letters[::-1], MALFORMED):
        assert re.search(reason, letter["reason"]), f"{name}: the reason {letter['reason']!r} does not say {reason}"
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if name != "not-utf8":
            shown = letter["payload"].removesuffix("…")
            assert raw.decode().startswith(shown), f"{name}: dead letter payload {letter['payload'][:200]!r}"
            assert len(shown) > 0 or not raw, f"{name}: the dead letter shows nothing of the message"
        if name == "too-large":
            assert len(letter["payload"]) < 64 * 1024, f"too-large: {len(letter['payload'])} characters kept"

    rows = read_rows(node, dataset)
    assert sorted((r["device"], r["time"], r["level"], r["battery"], r["rssi"]) for r in rows) == sorted([
        ("s1", BASE_TIME, 10.5, None, -80),
        ("s2", BASE_TIME + dt.timedelta(minutes=1), 20.25, None, -95),
        ("s1", BASE_TIME + dt.timedelta(minutes=2), 11.0, None, -81),
        ("s3", BASE_TIME + dt.timedelta(minutes=2), 30.0, None, -99),
    ])
    assert not [r for r in rows if r["device"] == "s9"], "a row of the refused mixed message was stored"
    assert connector_metric(node, "sensoren", "rejected") == len(MALFORMED)
    assert connector_metric(node, "sensoren", "stored") is not None


class Publisher(threading.Thread):
    """Publishes `count` uplinks (QoS 1) in chunks, at most `rate` a second."""

    def __init__(self, broker: Mosquitto, messages: list, rate: float = 800.0, chunk: int = 40):
        super().__init__(daemon=True, name="uplink-publisher")
        self.broker, self.messages, self.rate, self.chunk = broker, messages, rate, chunk
        self.published = 0
        self.failure: str | None = None
        self.done = threading.Event()

    def run(self):
        try:
            pace = threading.Event()  # never set: its wait() paces the chunks
            for start in range(0, len(self.messages), self.chunk):
                self.published += self.broker.publish_many(self.messages[start:start + self.chunk])
                pace.wait(self.chunk / self.rate)
        except Exception as error:
            self.failure = repr(error)
        finally:
            self.done.set()


def test_uplinks_survive_sigkill_of_the_node_exactly_once(node_factory, mosquitto):
    seed = int(os.environ.get("URBANMESH_CRASH_SEED", random.randrange(1 << 30)))
    target = random.Random(seed).randrange(150, 900)
    print(f"connector crash test seed {seed}: kill after {target} stored rows (set URBANMESH_CRASH_SEED to repeat)")
    node = node_factory()
    dataset = ttn_dataset(node, "hochwasser-absturz")
    create(node, mqtt_connector("absturz", dataset, mosquitto.url, client_id="urbanmesh-absturz"))
    mosquitto.wait_subscribed(TTN_FILTER)

    devices = [f"pegel-{n:02d}" for n in range(4)]
    messages, expected = [], {}
    for f_cnt in range(500):
        for device, device_id in enumerate(devices):
            at = BASE_TIME + dt.timedelta(minutes=f_cnt, seconds=device)
            messages.append((ttn_topic(device_id), ttn_uplink(device_id, f_cnt, at, uplink_values(device, f_cnt))))
            expected[(device_id, at)] = uplink_values(device, f_cnt)["level"]
    assert len(messages) == 2000

    publisher = Publisher(mosquitto, messages)
    publisher.start()
    stored = wait_status(node, "absturz", lambda s: s["stored"] >= target, f"{target} rows stored", timeout=60)["stored"]
    node.kill9()
    assert stored < len(messages), f"the node had stored all {stored} rows before the kill: not mid-stream"
    assert publisher.done.wait(60) and publisher.failure is None, f"publishing failed: {publisher.failure}"
    assert publisher.published == 2000

    node.start()
    wait_until(lambda: node.rows_count(dataset) >= 2000, 120, "all 2000 uplinks stored after the restart")
    rows = read_rows(node, dataset)
    keys = [(r["device"], r["time"]) for r in rows]
    assert len(set(keys)) == 2000, f"{2000 - len(set(keys))} uplinks missing"
    assert len(keys) == 2000, f"{len(keys) - len(set(keys))} rows stored twice"
    assert {(r["device"], r["time"]): r["level"] for r in rows} == expected
    assert node.rows_count(dataset) == 2000
    status = wait_status(node, "absturz", lambda s: s["state"] == "connected", "connected after the restart")
    assert status["rejected"] == 0 and status["dead_letters"] == [], status


PASSWORD = "Pegel-Geheimnis-7f3a9c"
WRONG_PASSWORD = "falsch-d41d8cd98f"
AUTH_FAILED = r"(?i)authenticat|not ?authori[sz]ed|bad ?user ?name ?or ?password"


def test_mqtts_with_a_private_ca_and_a_password(node, mosquitto_factory):
    broker = mosquitto_factory(username="urbanmesh-detmold", password=PASSWORD, tls=True)
    dataset = ttn_dataset(node, "hochwasser-tls")
    answers: list[Response] = []

    good = mqtt_connector("lora-tls", dataset, broker.tls_url, username="urbanmesh-detmold", password=PASSWORD,
                          ca=broker.ca_file.read_text())
    answers.append(node.post_json(API, good))
    assert answers[-1].status == 201, answers[-1]
    assert_connector(answers[-1].json(), good)
    broker.wait_subscribed(TTN_FILTER)
    at = BASE_TIME + dt.timedelta(hours=1)
    broker.publish(ttn_topic("werre-pegel-01"), ttn_uplink("werre-pegel-01", 1, at, uplink_values(0, 1), rssi=-70))
    wait_status(node, "lora-tls", lambda s: s["stored"] == 1, "the uplink over mqtts")
    assert [(r["device"], r["time"], r["rssi"]) for r in read_rows(node, dataset)] == [("werre-pegel-01", at, -70)]

    wrong = {**good, "id": "lora-falsch", "password": WRONG_PASSWORD}
    answers.append(node.post_json(API, wrong))
    assert answers[-1].status == 201, answers[-1]
    status = wait_status(node, "lora-falsch",
                         lambda s: s["state"] == "retrying" and re.search(AUTH_FAILED, s["last_error"] or ""),
                         "retrying with an authentication error")
    assert status["messages"] == 0 and status["stored"] == 0, status

    # The broker's certificate is from a private CA: without `ca` it is not trusted.
    untrusted = {**good, "id": "lora-ohne-ca"}
    del untrusted["ca"]
    answers.append(node.post_json(API, untrusted))
    assert answers[-1].status == 201, answers[-1]
    wait_status(node, "lora-ohne-ca",
                lambda s: s["state"] == "retrying" and re.search(r"(?i)certificate|issuer", s["last_error"] or ""),
                "retrying with a certificate error")

    assert node.get("/readyz").status == 200
    assert status_of(node, "lora-tls")["state"] == "connected"
    answers += [node.get(f"{API}/{c}", auth=True) for c in ("lora-tls", "lora-falsch", "lora-ohne-ca")]
    answers += [node.get(API, auth=True), node.get("/metrics", auth=True)]
    for answer in answers:
        assert answer.status in (200, 201), answer
        assert PASSWORD not in answer.text and WRONG_PASSWORD not in answer.text, f"a password in {answer!r}"
    for connector in list_connectors(node).values():
        assert "password" not in connector, connector
    assert PASSWORD not in node.log_tail(10 ** 7) and WRONG_PASSWORD not in node.log_tail(10 ** 7), (
        "a password in the node's log")


def test_replacing_the_password_restarts_the_connector_and_keeps_it_write_only(node, mosquitto_factory):
    broker = mosquitto_factory(username="urbanmesh", password=PASSWORD)
    dataset = ttn_dataset(node, "hochwasser-put")
    first = mqtt_connector("lora-put", dataset, broker.url, username="urbanmesh", password=WRONG_PASSWORD)
    create(node, first)
    wait_status(node, "lora-put", lambda s: s["state"] == "retrying" and re.search(AUTH_FAILED, s["last_error"] or ""),
                "retrying with the wrong password")

    replaced = {**first, "password": PASSWORD}
    response = put_json(node, f"{API}/lora-put", replaced)
    assert response.status == 200, response
    assert PASSWORD not in response.text and WRONG_PASSWORD not in response.text, response
    assert_connector(response.json(), replaced)
    broker.wait_subscribed(TTN_FILTER)
    broker.publish(ttn_topic("bega-pegel-02"), ttn_uplink("bega-pegel-02", 3, BASE_TIME, uplink_values(1, 3)))
    status = wait_status(node, "lora-put", lambda s: s["stored"] == 1 and s["state"] == "connected",
                         "stored with the new password")
    assert read_rows(node, dataset)[0]["device"] == "bega-pegel-02"
    assert status["last_error"] is None or not re.search(AUTH_FAILED, status["last_error"]), status
    for answer in (node.get(f"{API}/lora-put", auth=True), node.get(API, auth=True)):
        assert answer.status == 200 and PASSWORD not in answer.text and WRONG_PASSWORD not in answer.text, answer
    assert "password" not in get_connector(node, "lora-put"), "the password came back"
    assert "password" not in list_connectors(node)["lora-put"], "the password came back"


# ---- pulling: PEGELONLINE and generic JSON APIs ------------------------------------------------


def quarter_hour(instant: dt.datetime) -> dt.datetime:
    return instant.replace(minute=instant.minute - instant.minute % 15, second=0, microsecond=0)


def test_pegelonline_stations_are_pulled_incrementally(node, pegelonline):
    dataset = pegel_spec("pegel-weser")["id"]
    node.create_dataset(pegel_spec(dataset))
    now = quarter_hour(dt.datetime.now(UTC))
    vlotho, porta = pegelonline.uuids
    # Eight quarter-hours until two hours ago, the same instants at both stations.
    first = [now - dt.timedelta(minutes=15 * k) for k in range(15, 7, -1)]
    expected: dict[tuple, float] = {}

    def add(station: str, shortname: str, instants, offset: float):
        values = {t: round(offset + t.hour * 2 + t.minute / 15, 1) for t in instants}
        pegelonline.add_measurements(station, values)
        expected.update({(shortname, t): v for t, v in values.items()})

    add(vlotho, "VLOTHO", first, 300.0)
    add(porta, "PORTA", first, 250.0)

    connector = {"id": "weser-pegel", "dataset": dataset, "kind": "pegelonline", "url": pegelonline.base,
                 "stations": [vlotho, porta], "every": "1s"}
    create(node, connector)

    def stored_rows():
        rows = read_rows(node, dataset)
        return {(r["station"], r["time"]): r for r in rows}, rows

    def assert_rows():
        keyed, rows = stored_rows()
        assert len(rows) == len(keyed), f"{len(rows) - len(keyed)} measurements stored twice"
        assert {k: r["value"] for k, r in keyed.items()} == expected
        assert all(r["quality"] is None for r in rows), rows[:3]

    wait_status(node, "weser-pegel", lambda s: s["stored"] >= 16, "16 measurements stored")
    assert_rows()

    def pulled_from(last: dt.datetime):
        """Both stations asked for measurements from `last` on."""
        return all(
            any(r.query.get("start") and parse_instant(r.query["start"]) == last and r.status == 200
                for r in pegelonline.measurement_requests(station))
            for station in (vlotho, porta)
        )

    wait_until(lambda: pulled_from(first[-1]), DEADLINE, f"a pull with start= {first[-1]}")

    later = [now - dt.timedelta(minutes=15 * k) for k in (6, 5, 4)]
    add(vlotho, "VLOTHO", later, 300.0)
    add(porta, "PORTA", later, 250.0)
    wait_status(node, "weser-pegel", lambda s: s["stored"] >= 22, "the 6 new measurements stored")
    wait_until(lambda: pulled_from(later[-1]), DEADLINE, f"a pull with start= {later[-1]}")
    # More pulls change nothing.
    pulls = len(pegelonline.measurement_requests(vlotho))
    wait_until(lambda: len(pegelonline.measurement_requests(vlotho)) >= pulls + 3, DEADLINE, "three more pulls")
    assert_rows()
    status = status_of(node, "weser-pegel")
    assert status["stored"] == 22 and status["rejected"] == 0 and status["state"] in ("waiting", "pulling"), status
    # No pull ever started after what was stored: nothing can have been skipped.
    for station in (vlotho, porta):
        starts = [parse_instant(r.query["start"]) for r in pegelonline.measurement_requests(station)
                  if r.query.get("start")]
        assert starts and max(starts) <= later[-1], starts

    # The API fails three times: the connector says so, retries, and catches up.
    pegelonline.fail_next(3)
    newest = [now - dt.timedelta(minutes=15 * 3)]
    add(vlotho, "VLOTHO", newest, 300.0)
    add(porta, "PORTA", newest, 250.0)
    seen: list[dict] = []

    def caught_up():
        status = status_of(node, "weser-pegel")
        seen.append(status)
        return status["stored"] >= 24

    wait_until(caught_up, 60, "catching up after three failed requests", interval=0.005)
    assert len(pegelonline.failed) == 3
    errors = [s["last_error"] for s in seen if s["last_error"]]
    assert any(re.search(r"\b500\b", e) for e in errors), f"last_error never showed the 500: {errors[:5]}"
    assert_rows()
    after = pegelonline.requests[pegelonline.requests.index(pegelonline.failed[-1]) + 1:]
    assert any(r.status == 200 and r.path.endswith("/measurements.json") for r in after), after


def test_http_json_pulls_rows_from_start_on(node, json_feed):
    dataset = "sensorik-detmold"
    node.create_dataset(pegel_spec(dataset))

    def item(sensor: str, minute: int, cm: float, quality: int) -> dict:
        at = BASE_TIME + dt.timedelta(minutes=minute)
        return {"sensor": sensor, "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "cm": cm, "meta": {"q": quality}}

    json_feed.add_rows([item("werre-1", 0, 81.5, 1), item("bega-2", 0, 64.25, 2), item("werre-1", 15, 82.0, 1),
                        item("bega-2", 15, 64.5, 3)])
    connector = {
        "id": "sensorik", "dataset": dataset, "kind": "http-json", "url": json_feed.url, "every": "1s",
        "rows": "data.items",
        "mapping": {"columns": {"station": "sensor", "time": "ts", "value": "cm", "quality": "meta.q"},
                    "key": ["station", "time"]},
    }
    create(node, connector)
    wait_status(node, "sensorik", lambda s: s["stored"] >= 4, "4 rows stored")
    first = json_feed.feed_requests()[0]
    assert first.query.get("since", "") == "", f"the first pull must leave {{start}} empty: {first}"

    def pulled_from(last: dt.datetime):
        return any(r.query.get("since") and parse_instant(r.query["since"]) == last for r in json_feed.feed_requests())

    wait_until(lambda: pulled_from(BASE_TIME + dt.timedelta(minutes=15)), DEADLINE, "a pull from the last stored time")
    json_feed.add_rows([item("werre-1", 30, 83.25, 1), item("bega-2", 30, 65.0, 2)])
    wait_status(node, "sensorik", lambda s: s["stored"] >= 6, "the 2 new rows stored")
    wait_until(lambda: pulled_from(BASE_TIME + dt.timedelta(minutes=30)), DEADLINE, "a pull from the new last time")
    pulls = len(json_feed.feed_requests())
    wait_until(lambda: len(json_feed.feed_requests()) >= pulls + 2, DEADLINE, "two more pulls")

    rows = read_rows(node, dataset)
    assert sorted((r["station"], r["time"], r["value"], r["quality"]) for r in rows) == sorted(
        (i["sensor"], parse_time(i["ts"]), float(i["cm"]), i["meta"]["q"]) for i in json_feed.rows)
    status = status_of(node, "sensorik")
    assert status["stored"] == 6 and status["rejected"] == 0 and status["dead_letters"] == [], status


# ---- definitions and access ------------------------------------------------------------------


@pytest.fixture(scope="module")
def defs(shared_node):
    """The module's node with a TTN dataset for connectors that are only defined."""
    ttn_dataset(shared_node, "definitionen")
    return shared_node


def valid_mqtt() -> dict:
    return mqtt_connector("definiert", "definitionen", "mqtt://127.0.0.1:1")


def valid_pegelonline() -> dict:
    return {"id": "definiert-pegel", "dataset": "definitionen", "kind": "pegelonline",
            "url": "http://127.0.0.1:1/webservices/rest-api/v2", "stations": ["fd99086c-8cde-5ee1-beba-35478ca745ed"],
            "every": "5m",
            "mapping": {"columns": {"device": "station.shortname", "time": "timestamp", "level": "value"},
                        "key": ["device", "time"]}}


def change(base, **changes):
    def make():
        connector = base()
        for key, value in changes.items():
            if value is None:
                connector.pop(key, None)
            else:
                connector[key] = value
        return connector
    return make


def with_column(base, column: str, path: str):
    def make():
        connector = base()
        connector["mapping"]["columns"][column] = path
        return connector
    return make


def with_key(base, key: list):
    def make():
        connector = base()
        connector["mapping"]["key"] = key
        return connector
    return make


BAD_DEFINITIONS = {
    "id with a space": (change(valid_mqtt, id="Detmold Pegel"), "id"),
    "id with an underscore": (change(valid_mqtt, id="detmold_pegel"), "id"),
    "empty id": (change(valid_mqtt, id=""), "id"),
    "unknown dataset": (change(valid_mqtt, dataset="gibt-es-nicht"), "dataset"),
    "unknown kind": (change(valid_mqtt, kind="ftp"), "kind"),
    "http url for mqtt": (change(valid_mqtt, url="http://127.0.0.1:1883"), "url"),
    "not a url": (change(valid_mqtt, url="irgendwo"), "url"),
    "ftp url for pegelonline": (change(valid_pegelonline, url="ftp://127.0.0.1/rest-api/v2"), "url"),
    "missing topic": (change(valid_mqtt, topic=None), "topic"),
    "multi-level wildcard in the middle": (change(valid_mqtt, topic="a/#/b"), "topic"),
    "wildcard inside a level": (change(valid_mqtt, topic="v3/flood+/devices"), "topic"),
    "bad format": (change(valid_mqtt, format="xml"), "format"),
    "zero every": (change(valid_pegelonline, every="0s"), "every"),
    "every in words": (change(valid_pegelonline, every="soon"), "every"),
    "unknown column": (with_column(valid_mqtt, "pegelstand", "uplink_message.decoded_payload.level"),
                       "mapping.columns.pegelstand"),
    "key not in the dataset": (with_key(valid_mqtt, ["device", "zeit"]), "mapping.key"),
    "path with an empty segment": (with_column(valid_mqtt, "level", "uplink_message..level"), "mapping.columns.level"),
    "path with a non-numeric index": (with_column(valid_mqtt, "rssi", "uplink_message.rx_metadata[x].rssi"),
                                      "mapping.columns.rssi"),
}


@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
def test_bad_definitions_are_refused_naming_the_field(defs, case):
    make, field = BAD_DEFINITIONS[case]
    connector = make()
    before = list_connectors(defs)
    response = defs.post_json(API, connector)
    assert response.status == 400, f"{case}: {response!r}"
    problem = response.problem()
    assert problem.get("field") == field, f"{case}: expected field {field!r}: {problem}"
    assert set(list_connectors(defs)) == set(before), "a refused connector was stored"
    if re.fullmatch(r"[a-z0-9-]+", connector.get("id") or ""):
        assert defs.get(f"{API}/{connector['id']}", auth=True).status == 404

    # The same field is checked when a connector is replaced.
    good = valid_pegelonline() if connector.get("kind") == "pegelonline" else valid_mqtt()
    good["id"] = "ersetzt"
    assert defs.post_json(API, good).status == 201
    try:
        if connector.get("id") != good["id"]:
            connector["id"] = good["id"]
            if field == "id":
                return  # the id in the path rules; a different body id is another matter
        response = put_json(defs, f"{API}/ersetzt", connector)
        assert response.status == 400, f"{case} by PUT: {response!r}"
        assert response.problem().get("field") == field, response.problem()
        assert_connector(get_connector(defs, "ersetzt"), good)
    finally:
        assert defs.delete(f"{API}/ersetzt").status == 204


@pytest.mark.parametrize("make", [valid_mqtt, valid_pegelonline], ids=["mqtt", "pegelonline"])
def test_the_valid_definitions_of_the_refusals_are_accepted(defs, make):
    connector = make()
    create(defs, connector)
    assert_connector(get_connector(defs, connector["id"]), connector)
    assert defs.delete(f"{API}/{connector['id']}").status == 204
    assert defs.get(f"{API}/{connector['id']}", auth=True).status == 404
    assert connector["id"] not in list_connectors(defs)


def test_connector_routes_need_staff_and_existing_ids(defs):
    node = defs
    connector = {**valid_mqtt(), "id": "zugang", "password": PASSWORD, "username": "urbanmesh"}
    create(node, connector)
    try:
        bad_token = {"Authorization": "Bearer " + "00" * 32}
        for headers in ({}, bad_token):
            calls = [
                node.request("GET", API, headers=headers),
                node.request("POST", API, json.dumps({**connector, "id": "anonym"}).encode(),
                             {"Content-Type": "application/json", **headers}),
                node.request("GET", f"{API}/zugang", headers=headers),
                node.request("PUT", f"{API}/zugang", json.dumps(connector).encode(),
                             {"Content-Type": "application/json", **headers}),
                node.request("DELETE", f"{API}/zugang", headers=headers),
            ]
            for response in calls:
                assert response.status == 401, response
                assert PASSWORD not in response.text
        assert set(list_connectors(node)) >= {"zugang"} and "anonym" not in list_connectors(node)
        assert_connector(get_connector(node, "zugang"), connector)

        assert node.get(f"{API}/gibt-es-nicht", auth=True).status == 404
        missing = put_json(node, f"{API}/gibt-es-nicht", {**connector, "id": "gibt-es-nicht"})
        assert missing.status == 404, missing
        assert node.delete(f"{API}/gibt-es-nicht").status == 404
        again = node.post_json(API, connector)
        assert again.status == 409, again
        assert PASSWORD not in again.text
    finally:
        assert node.delete(f"{API}/zugang").status == 204
    assert node.delete(f"{API}/zugang").status == 404


# ---- the config file ----------------------------------------------------------------------------


def test_a_connector_declared_in_the_config_file(node_factory, mosquitto):
    node = node_factory()
    dataset = ttn_dataset(node, "hochwasser-konfiguriert")
    assert node.terminate() == 0, node.log_tail()
    connector = mqtt_connector("aus-der-datei", dataset, mosquitto.url, client_id="urbanmesh-datei")
    with open(node.data_dir / "config.toml", "a") as config:
        config.write(connector_toml(connector))
    node.start()

    listed = list_connectors(node)
    assert set(listed) == {"aus-der-datei"}, listed
    assert_connector(listed["aus-der-datei"], connector)
    mosquitto.wait_subscribed(TTN_FILTER)
    at = BASE_TIME + dt.timedelta(hours=2)
    mosquitto.publish(ttn_topic("bega-pegel-02"), ttn_uplink("bega-pegel-02", 9, at, uplink_values(1, 9), rssi=-95))
    wait_status(node, "aus-der-datei", lambda s: s["stored"] == 1, "the uplink stored")
    assert read_rows(node, dataset) == [expected_row("bega-pegel-02", 1, 9, at, -95)]
