"""HTTP APIs for the pulling connectors: PEGELONLINE's REST API v2 and a generic JSON feed.

``Pegelonline`` answers the documented shapes of PEGELONLINE's REST API v2 under
``http://127.0.0.1:PORT/webservices/rest-api/v2``: ``stations.json`` (optionally
``?ids=…``), ``stations/{uuid}.json``, ``stations/{uuid}/W.json`` and
``stations/{uuid}/W/measurements.json?start=…&end=…`` (times in German local time with
their offset, as PEGELONLINE writes them: ``2026-12-04T05:15:00+01:00``). ``start`` and
``end`` take an ISO 8601 instant or, like the real service, a duration back from now
(``P1D``, ``PT2H``). ``JsonFeed`` serves rows in an envelope (``{"data": {"items": […]}}``)
from ``/api/feed?since=…``.

Both record every request (``requests``: method, path, query) and can be told to answer
the next N requests with an error (``fail_next``). Standard library only; no pytest in here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.parse
import uuid as uuidlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
API_PATH = "/webservices/rest-api/v2"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    status: int = 0
    at: float = 0.0

    def __repr__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"<{self.method} {self.path}{'?' + query if query else ''} -> {self.status}>"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_instant(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """An ISO 8601 instant (with `Z` or an offset; naive is German local time, as PEGELONLINE
    reads it) or a duration back from `now` (`P15D`, `PT3H`, `P1DT12H`); raises ApiError 400."""
    text = text.strip()
    duration = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if duration and text not in ("P", "PT") and not text.endswith("T"):
        days, hours, minutes, seconds = (int(g or 0) for g in duration.groups())
        now = now or dt.datetime.now(UTC)
        return now - dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    # A `+` in an unencoded query arrives as a space.
    candidate = re.sub(r" (\d\d:?\d\d)$", r"+\1", text).replace("Z", "+00:00").replace("z", "+00:00")
    if "." in candidate:  # fromisoformat takes at most six fractional digits
        head, rest = candidate.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        candidate = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        value = dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise ApiError(400, f"Ungültiger Zeitpunkt oder Zeitraum: {text}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BERLIN)
    return value.astimezone(UTC)


def local_time(instant: dt.datetime) -> str:
    """`instant` as PEGELONLINE writes it: German local time to the second with the offset."""
    return instant.astimezone(BERLIN).isoformat(timespec="seconds")


class _Server:
    """A ThreadingHTTPServer on a free loopback port in a daemon thread, recording requests
    and failing on demand; subclasses answer through `route(method, path, query)`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self._failures: list[tuple[int, str]] = []
        self.failed: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server._handle(self)

            def do_HEAD(self):
                server._handle(self)

            def log_message(self, format, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=type(self).__name__, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 500, body: str = "Interner Serverfehler") -> None:
        """Answers the next `count` requests (whatever they ask) with `status`."""
        with self.lock:
            self._failures += [(status, body)] * count

    def requests_to(self, path_pattern: str) -> list[Request]:
        """The recorded requests whose path matches the regular expression (fully), in order."""
        with self.lock:
            return [r for r in self.requests if re.fullmatch(path_pattern, r.path)]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        query = {k: v for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
        record = Request(handler.command, urllib.parse.unquote(parts.path), query, at=time.monotonic())
        with self.lock:
            self.requests.append(record)
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, text = failure
            body = json.dumps({"status": status, "message": text}).encode()
            with self.lock:
                self.failed.append(record)
        else:
            try:
                status, document = 200, self.route(handler.command, record.path, query)
            except ApiError as error:
                status, document = error.status, {"status": error.status, "message": error.message}
            body = json.dumps(document, ensure_ascii=False).encode()
        record.status = status
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def route(self, method: str, path: str, query: dict[str, str]):
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@dataclass
class Station:
    uuid: str
    number: str
    shortname: str
    longname: str
    km: float
    agency: str
    longitude: float
    latitude: float
    water: str
    water_longname: str
    # Measurements of W (Wasserstand) in cm, by instant (UTC).
    measurements: dict[dt.datetime, float] = field(default_factory=dict)

    def document(self, timeseries: bool = False) -> dict:
        doc = {
            "uuid": self.uuid,
            "number": self.number,
            "shortname": self.shortname,
            "longname": self.longname,
            "km": self.km,
            "agency": self.agency,
            "longitude": self.longitude,
            "latitude": self.latitude,
            "water": {"shortname": self.water, "longname": self.water_longname},
        }
        if timeseries:
            doc["timeseries"] = [W_TIMESERIES]
        return doc


W_TIMESERIES = {
    "shortname": "W",
    "longname": "WASSERSTAND ROHDATEN",
    "unit": "cm",
    "equidistance": 15,
    "gaugeZero": {"unit": "m. ü. NHN", "value": 41.63, "validFrom": "2019-11-01"},
}

# Two gauges on the Weser near Ostwestfalen-Lippe (the uuids are made up for the tests).
DEFAULT_STATIONS = [
    dict(number="4577100", shortname="VLOTHO", longname="VLOTHO", km=201.2, agency="WSA WESER",
         longitude=8.8617, latitude=52.1747, water="WESER", water_longname="WESER"),
    dict(number="4579100", shortname="PORTA", longname="PORTA", km=198.4, agency="WSA WESER",
         longitude=8.9181, latitude=52.2476, water="WESER", water_longname="WESER"),
]


class Pegelonline(_Server):
    """PEGELONLINE's REST API v2 for a few stations; `base` is what a connector's `url` takes."""

    def __init__(self, stations: list[dict] | None = None):
        self.stations: dict[str, Station] = {}
        for spec in stations if stations is not None else DEFAULT_STATIONS:
            station_uuid = spec.get("uuid") or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "pegel:" + spec["number"]))
            self.stations[station_uuid] = Station(uuid=station_uuid, **{k: v for k, v in spec.items() if k != "uuid"})
        super().__init__()

    @property
    def base(self) -> str:
        return self.origin + API_PATH

    @property
    def uuids(self) -> list[str]:
        return list(self.stations)

    def station(self, key: str) -> Station:
        """A station by uuid or shortname."""
        return self.stations.get(key) or next(s for s in self.stations.values() if s.shortname == key)

    def add_measurements(self, station: str, values: dict[dt.datetime, float]) -> None:
        """Adds (or replaces) W measurements of `station` (uuid or shortname), by aware instant."""
        with self.lock:
            target = self.station(station).measurements
            for instant, value in values.items():
                assert instant.tzinfo is not None, "aware datetimes, please"
                target[instant.astimezone(UTC)] = float(value)

    def measurement_requests(self, station: str) -> list[Request]:
        """The recorded requests for `station`'s (uuid or shortname) W measurements."""
        uuid = self.station(station).uuid
        return self.requests_to(re.escape(f"{API_PATH}/stations/{uuid}/W/measurements.json"))

    def route(self, method: str, path: str, query: dict[str, str]):
        if not path.startswith(API_PATH + "/"):
            raise ApiError(404, f"Nicht gefunden: {path}")
        rest = path[len(API_PATH) + 1:]
        timeseries = query.get("includeTimeseries", "false").lower() == "true"
        with self.lock:
            if rest == "stations.json":
                wanted = [i.strip() for i in query["ids"].split(",")] if query.get("ids") else None
                return [s.document(timeseries) for s in self.stations.values()
                        if wanted is None or s.uuid in wanted or s.shortname in wanted or s.number in wanted]
            match = re.fullmatch(r"stations/([^/]+?)(?:\.json|/(W)\.json|/(W)/(measurements|currentmeasurement)\.json)",
                                 rest)
            if not match:
                raise ApiError(404, f"Nicht gefunden: {path}")
            key = match.group(1)
            station = self.stations.get(key) or next(
                (s for s in self.stations.values() if key in (s.shortname, s.number)), None)
            if station is None:
                raise ApiError(404, f"Pegel nicht gefunden: {key}")
            if match.group(2):
                return W_TIMESERIES
            if not match.group(3):
                return station.document(timeseries)
            series = sorted(station.measurements.items())
            if match.group(4) == "currentmeasurement":
                if not series:
                    raise ApiError(404, "Keine aktuellen Messwerte")
                instant, value = series[-1]
                return {"timestamp": local_time(instant), "value": value, "stateMnwMhw": "normal",
                        "stateNswHsw": "normal"}
            start = parse_instant(query["start"]) if query.get("start") else None
            end = parse_instant(query["end"]) if query.get("end") else None
            return [{"timestamp": local_time(instant), "value": value} for instant, value in series
                    if (start is None or instant >= start) and (end is None or instant <= end)]


class JsonFeed(_Server):
    """A generic JSON API: `GET /api/feed?since=…` answers `{"data": {"items": [row, …]},
    "meta": {…}}` with the rows whose `ts` is at or after `since` (all when `since` is empty
    or missing). `url` is the address with `{start}` where `since` goes."""

    def __init__(self, time_key: str = "ts"):
        self.rows: list[dict] = []
        self.time_key = time_key
        super().__init__()

    @property
    def url(self) -> str:
        return self.origin + "/api/feed?since={start}"

    def add_rows(self, rows: list[dict]) -> None:
        with self.lock:
            self.rows += rows

    def feed_requests(self) -> list[Request]:
        return self.requests_to(r"/api/feed")

    def route(self, method: str, path: str, query: dict[str, str]):
        if path != "/api/feed":
            raise ApiError(404, f"not found: {path}")
        since = parse_instant(query["since"]) if query.get("since") else None
        with self.lock:
            items = [r for r in self.rows if since is None or parse_instant(r[self.time_key]) >= since]
        return {"data": {"items": items}, "meta": {"count": len(items), "source": "Sensorik Detmold"}}
