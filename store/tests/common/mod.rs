//! Helpers shared by the decoder tests: the dataset they write to, and `.xlsx` packages
//! built part by part, so a test can make any part hostile.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own share

use std::io::{Cursor, Write};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use urbanmesh_store::StoreError;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// `station` (required text) and `value` (optional float), as the sheets below name them.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("station", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]))
}

/// A zip of `parts`, each deflated.
pub fn zip(parts: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in parts {
        writer.start_file(*name, options).expect("start part");
        writer.write_all(content).expect("write part");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// The parts of a one-sheet workbook around `sheet` and `shared_strings` (XML text).
pub fn workbook(sheet: &str, shared_strings: Option<&str>) -> Vec<u8> {
    let mut parts = vec![
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes().to_vec()),
        ("_rels/.rels", ROOT_RELS.as_bytes().to_vec()),
        ("xl/workbook.xml", WORKBOOK.as_bytes().to_vec()),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes().to_vec()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes().to_vec()),
    ];
    if let Some(strings) = shared_strings {
        parts.push(("xl/sharedStrings.xml", strings.as_bytes().to_vec()));
    }
    zip(&parts)
}

/// A worksheet with `cells` (already `<c>` elements) in `rows` rows, header first.
pub fn sheet(dimension: &str, rows: &[String]) -> String {
    let rows: String =
        rows.iter().enumerate().map(|(i, cells)| format!(r#"<row r="{}">{cells}</row>"#, i + 1)).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
    )
}

/// A shared-string table with the given `sst` attributes and strings.
pub fn shared_strings(attributes: &str, strings: &[&str]) -> String {
    let items: String = strings.iter().map(|s| format!("<si><t>{s}</t></si>")).collect();
    format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="{MAIN}" {attributes}>{items}</sst>"#)
}

/// A cell referring to shared string `index`.
pub fn shared(reference: &str, index: usize) -> String {
    format!(r#"<c r="{reference}" t="s"><v>{index}</v></c>"#)
}

pub fn number(reference: &str, value: &str) -> String {
    format!(r#"<c r="{reference}"><v>{value}</v></c>"#)
}

pub fn inline(reference: &str, text: &str) -> String {
    format!(r#"<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A valid workbook: header `station`, `value` and two rows.
pub fn good_workbook() -> Vec<u8> {
    let rows = [
        format!("{}{}", shared("A1", 0), shared("B1", 1)),
        format!("{}{}", shared("A2", 2), number("B2", "1.5")),
        format!("{}{}", inline("A3", "Lutter"), number("B3", "2")),
    ];
    workbook(
        &sheet("A1:B3", &rows),
        Some(&shared_strings(r#"count="3" uniqueCount="3""#, &["station", "value", "Dalke"])),
    )
}

/// Rewrites every declared unpacked size (local headers and central directory) to
/// `declared`, as a hostile file would, keeping the data as it is.
pub fn lie_about_sizes(zip: &mut [u8], declared: u32) {
    let end = zip.len() - 22;
    assert_eq!(&zip[end..end + 4], b"PK\x05\x06", "a zip without a comment");
    let entries = u16::from_le_bytes([zip[end + 10], zip[end + 11]]) as usize;
    let mut at = u32::from_le_bytes(zip[end + 16..end + 20].try_into().expect("4 bytes")) as usize;
    for _ in 0..entries {
        assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
        let length = |offset: usize| u16::from_le_bytes([zip[at + offset], zip[at + offset + 1]]) as usize;
        let (name, extra, comment) = (length(28), length(30), length(32));
        let local = u32::from_le_bytes(zip[at + 42..at + 46].try_into().expect("4 bytes")) as usize;
        zip[at + 24..at + 28].copy_from_slice(&declared.to_le_bytes());
        assert_eq!(&zip[local..local + 4], b"PK\x03\x04");
        zip[local + 22..local + 26].copy_from_slice(&declared.to_le_bytes());
        at += 46 + name + extra + comment;
    }
}

/// An error the caller's input caused, with a reason that says what is wrong.
pub fn assert_explained(error: &StoreError) {
    assert!(error.is_client_error(), "not the input's fault: {error:?}");
    match error {
        StoreError::InvalidRows { errors, rejected, total } => {
            assert!(!errors.is_empty() && *rejected > 0 && rejected <= total, "{error:?}");
            for row in errors {
                assert!(row.row >= 1 && !row.reason.trim().is_empty(), "{row:?}");
            }
        }
        StoreError::LimitExceeded { limit, found, .. } => {
            assert!(limit.starts_with("xlsx_max_") && !found.is_empty(), "{error:?}");
            assert!(error.to_string().contains(limit), "{error}");
        }
        other => assert!(!other.to_string().trim().is_empty()),
    }
}

const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;

const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;

const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Pegel" sheetId="1" r:id="rId1"/></sheets></workbook>"#;

const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
