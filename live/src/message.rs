//! One message as rows: read by its format, bounded, and mapped. A message is stored whole
//! or not at all; the reason for "not at all" names what is wrong.

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;

use crate::mapping::Mapper;
use crate::path::JsonPath;
use crate::spec::MessageFormat;

/// Bounds on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Bytes of one MQTT message or one pulled response.
    pub bytes: usize,
    /// Rows one message may carry.
    pub rows: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self { bytes: 256 * 1024, rows: 10_000 }
    }
}

/// The rows of an MQTT message in `format`.
pub(crate) fn rows(
    payload: &[u8],
    format: MessageFormat,
    mapper: &Mapper,
    limits: MessageLimits,
) -> Result<RecordBatch, String> {
    let value = parse(payload, limits)?;
    match format {
        MessageFormat::Ttn => {
            let device = value.pointer("/end_device_ids/device_id");
            if !device.is_some_and(Value::is_string) {
                return Err("is not a The Things Stack uplink: `end_device_ids.device_id` is missing".into());
            }
            if !value.get("uplink_message").is_some_and(Value::is_object) {
                return Err(
                    "is not an uplink: `uplink_message` is missing (a join, downlink or status message?)".into()
                );
            }
            mapper.batch(&[&value])
        }
        MessageFormat::Json => table(&value, None, mapper, limits),
    }
}

/// The rows of a JSON document: the array at `rows` (or the document itself), or one object.
pub(crate) fn table(
    value: &Value,
    rows: Option<&JsonPath>,
    mapper: &Mapper,
    limits: MessageLimits,
) -> Result<RecordBatch, String> {
    let value = match rows {
        Some(path) => path.find(value).ok_or_else(|| format!("has no rows at `{path}`"))?,
        None => value,
    };
    match value {
        Value::Object(_) => mapper.batch(&[value]),
        Value::Array(items) if items.is_empty() => Err("holds no rows".into()),
        Value::Array(items) if items.len() > limits.rows => {
            Err(format!("holds {} rows, over the limit of {}", items.len(), limits.rows))
        }
        Value::Array(items) => {
            if let Some(position) = items.iter().position(|item| !item.is_object()) {
                return Err(format!("row {}: expected a JSON object with one key per column", position + 1));
            }
            mapper.batch(&items.iter().collect::<Vec<_>>())
        }
        _ => Err("is neither a JSON object nor an array of objects".into()),
    }
}

/// A message's JSON, within the size bound.
pub(crate) fn parse(payload: &[u8], limits: MessageLimits) -> Result<Value, String> {
    if payload.len() > limits.bytes {
        return Err(format!("is {} bytes, over the limit of {} bytes", payload.len(), limits.bytes));
    }
    let text = std::str::from_utf8(payload).map_err(|e| format!("is not UTF-8 text: {e}"))?;
    serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))
}
