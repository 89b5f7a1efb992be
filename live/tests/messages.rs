//! A connector's definition checked against its dataset, and messages read by it: what is
//! accepted, and what is refused with which reason.

use serde_json::json;
use urbanmesh_catalog::Dataset;
use urbanmesh_live::{ConnectorSpec, LiveError};

fn pegel() -> Dataset {
    serde_json::from_value(json!({
        "id": "pegel", "title": "Pegel", "description": "Wasserstände",
        "schema": {"fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "station", "type": "utf8"},
            {"name": "value", "type": "float64"},
            {"name": "quality", "type": "int64", "nullable": true}]},
        "time_column": "time", "series_key": "station",
        "tenant": "detmold", "created": "2026-12-01T00:00:00Z", "modified": "2026-12-01T00:00:00Z"
    }))
    .expect("a dataset")
}

fn spec(fields: serde_json::Value) -> ConnectorSpec {
    let mut base = json!({"id": "gauges", "dataset": "pegel", "kind": "mqtt", "url": "mqtt://127.0.0.1:1883",
        "topic": "v3/+/devices/+/up", "format": "ttn"});
    for (key, value) in fields.as_object().expect("fields") {
        base[key] = value.clone();
    }
    serde_json::from_value(base).expect("a connector definition")
}

fn refused_field(spec: &ConnectorSpec) -> String {
    match urbanmesh_live::check(spec, &pegel(), "detmold") {
        Err(LiveError::Invalid { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn names_the_field_at_fault() {
    let cases = [
        (json!({"id": "Gauges"}), "id"),
        (json!({"id": "-x"}), "id"),
        (json!({"url": "http://127.0.0.1:1883"}), "url"),
        (json!({"url": "mqtt://127.0.0.1:1883/topic"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"topic": "a/#/b"}), "topic"),
        (json!({"topic": ""}), "topic"),
        (json!({"every": "5m"}), "every"),
        (json!({"stations": ["abc"]}), "stations"),
        (json!({"password": "secret"}), "username"),
        (json!({"ca": "not a certificate"}), "ca"),
        (
            json!({"url": "mqtts://localhost", "ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "ca",
        ),
        (json!({"mapping": {"columns": {"level": "a.b"}}}), "mapping.columns.level"),
        (json!({"mapping": {"columns": {"value": "a..b"}}}), "mapping.columns.value"),
        (json!({"mapping": {"columns": {"value": "a[x]"}}}), "mapping.columns.value"),
        (json!({"mapping": {"key": ["device"]}}), "mapping.key"),
        (json!({"mapping": {"key": ["station", "station"]}}), "mapping.key"),
        (
            json!({"kind": "pegelonline", "url": "https://example.org/api", "topic": null, "format": null, "stations": ["x-y"]}),
            "stations[0]",
        ),
        (json!({"kind": "pegelonline", "url": "https://example.org/api", "topic": null, "format": null}), "stations"),
        (json!({"kind": "pegelonline", "url": "https://example.org/api", "format": null, "stations": ["a1"]}), "topic"),
        (json!({"kind": "http-json", "url": "ftp://example.org/x", "topic": null, "format": null}), "url"),
        (
            json!({"kind": "http-json", "url": "https://example.org/x", "topic": null, "format": null, "every": "0s"}),
            "every",
        ),
        (
            json!({"kind": "http-json", "url": "https://example.org/x", "topic": null, "format": null, "rows": "a."}),
            "rows",
        ),
    ];
    for (fields, field) in cases {
        assert_eq!(refused_field(&spec(fields.clone())), field, "for {fields}");
    }
}

#[test]
fn a_unit_that_is_no_duration_is_refused_while_reading() {
    let error = serde_json::from_value::<ConnectorSpec>(json!({"id": "x", "dataset": "pegel",
        "kind": "http-json", "url": "https://example.org", "every": "soon"}))
    .expect_err("refused");
    assert!(error.to_string().contains("soon"), "{error}");
}

fn uplink(device: &str, level: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "end_device_ids": {"device_id": device, "application_ids": {"application_id": "flood"}},
        "received_at": "2026-12-04T05:15:00.123456789Z",
        "uplink_message": {"f_cnt": 7, "decoded_payload": {"value": level}, "rx_metadata": [{"rssi": -97}]}
    }))
    .expect("json")
}

#[test]
fn reads_uplinks_by_the_defaults_and_refuses_bad_ones_with_reasons() {
    let checked = urbanmesh_live::check(&spec(json!({})), &pegel(), "detmold").expect("valid");
    let batch = checked.read(&uplink("pegel-1", json!(251.5))).expect("stored");
    assert_eq!(batch.num_rows(), 1);
    let refusals = [
        (b"not json".to_vec(), "is not JSON"),
        (vec![0xff, 0xfe], "is not UTF-8"),
        (uplink("pegel-1", json!("high")), "value"),
        (uplink("pegel-1", json!(null)), "value"),
        (
            serde_json::to_vec(&json!({"end_device_ids": {"device_id": "x"}, "join_accept": {}})).expect("json"),
            "uplink_message",
        ),
        (serde_json::to_vec(&json!([1, 2])).expect("json"), "device_id"),
        (vec![b' '; 300 * 1024], "over the limit"),
    ];
    for (payload, expected) in refusals {
        let reason = checked.read(&payload).expect_err("refused");
        assert!(reason.contains(expected), "{reason} should say {expected}");
    }
    let mapped =
        spec(json!({"format": "json", "mapping": {"columns": {"station": "dev", "value": "m.level[1]", "time": "t"}}}));
    let checked = urbanmesh_live::check(&mapped, &pegel(), "detmold").expect("valid");
    let rows = json!([{"dev": "a", "t": 1764825300000_i64, "m": {"level": [0, 1.5]}},
                      {"dev": "b", "t": "2026-12-04T05:15:00Z", "m": {"level": [0, 2]}}]);
    assert_eq!(checked.read(&serde_json::to_vec(&rows).expect("json")).expect("stored").num_rows(), 2);
    let bad = json!([{"dev": "a", "t": 1764825300000_i64, "m": {"level": [0, 1.5]}}, {"dev": "b", "t": 1}, 3]);
    let reason = checked.read(&serde_json::to_vec(&bad).expect("json")).expect_err("refused");
    assert!(reason.contains("row 3"), "{reason}");
    let bad = json!([{"dev": "a", "t": 1764825300000_i64, "m": {"level": [0, 1.5]}}, {"dev": "b", "t": 1}]);
    let reason = checked.read(&serde_json::to_vec(&bad).expect("json")).expect_err("refused");
    assert!(reason.contains("m.level[1]") && reason.contains("value"), "{reason}");
}
