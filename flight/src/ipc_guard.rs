//! Compressed Arrow IPC is refused where nobody trusted sends it.
//!
//! A compressed record batch states, in its first bytes, the size each buffer decompresses
//! to, and the decoder allocates that size before it checks anything: a few bytes can ask
//! for a terabyte and abort the node. Nothing the node sends is compressed, so a bound
//! parameter row, a statement handle and a member's answer must not be either.

use arrow::ipc::root_as_message;
use arrow_flight::FlightData;
use futures::{Stream, StreamExt};

use crate::FlightError;

/// Why a message with this IPC header may not be decoded, if it may not.
pub(crate) fn check_header(header: &[u8]) -> Result<(), FlightError> {
    if header.is_empty() {
        return Ok(());
    }
    let message = root_as_message(header).map_err(|e| malformed(&e.to_string()))?;
    let compressed = message.header_as_record_batch().is_some_and(|batch| batch.compression().is_some())
        || message
            .header_as_dictionary_batch()
            .and_then(|dictionary| dictionary.data())
            .is_some_and(|batch| batch.compression().is_some());
    if compressed {
        return Err(FlightError::Descriptor {
            reason: "compressed Arrow IPC batches are not accepted here; send them uncompressed".into(),
        });
    }
    Ok(())
}

/// The Flight stream, ended with an error at the first compressed batch.
pub(crate) fn uncompressed<S, E>(stream: S) -> impl Stream<Item = Result<FlightData, E>> + Send + Unpin
where
    S: Stream<Item = Result<FlightData, E>> + Send + Unpin,
    E: From<FlightError>,
{
    stream.map(|data| {
        let data = data?;
        check_header(&data.data_header).map_err(E::from)?;
        Ok(data)
    })
}

/// Checks every message of an Arrow IPC stream held in memory, without decoding bodies.
pub(crate) fn check_stream(mut bytes: &[u8]) -> Result<(), FlightError> {
    const CONTINUATION: i32 = -1;
    let word = |bytes: &[u8]| -> Option<i32> { Some(i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)) };
    loop {
        let Some(mut length) = word(bytes) else { return Ok(()) };
        bytes = &bytes[4..];
        if length == CONTINUATION {
            let Some(next) = word(bytes) else { return Ok(()) };
            length = next;
            bytes = &bytes[4..];
        }
        let Ok(length) = usize::try_from(length) else { return Err(malformed("negative message length")) };
        if length == 0 {
            return Ok(()); // end of stream
        }
        let header = bytes.get(..length).ok_or_else(|| malformed("message cut short"))?;
        check_header(header)?;
        let body = root_as_message(header).map_err(|e| malformed(&e.to_string()))?.bodyLength();
        let body = usize::try_from(body).map_err(|_| malformed("negative body length"))?;
        bytes = bytes.get(length..).and_then(|rest| rest.get(body..)).ok_or_else(|| malformed("body cut short"))?;
    }
}

fn malformed(reason: &str) -> FlightError {
    FlightError::Descriptor { reason: format!("invalid Arrow IPC message: {reason}") }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::ipc::CompressionType;
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

    use super::*;

    fn stream(compression: Option<CompressionType>) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)]).expect("batch");
        let options = IpcWriteOptions::default().try_with_compression(compression).expect("options");
        let mut bytes = Vec::new();
        let mut writer = StreamWriter::try_new_with_options(&mut bytes, &batch.schema(), options).expect("writer");
        writer.write(&batch).expect("write");
        writer.finish().expect("finish");
        drop(writer);
        bytes
    }

    #[test]
    fn compressed_batches_are_refused_before_decoding() {
        assert!(check_stream(&stream(None)).is_ok());
        let refused = check_stream(&stream(Some(CompressionType::LZ4_FRAME))).expect_err("compressed");
        assert!(refused.to_string().contains("compressed"), "{refused}");
        let cut = stream(None);
        assert!(check_stream(&cut[..cut.len() / 2]).is_err(), "a stream cut short is refused");
    }
}
