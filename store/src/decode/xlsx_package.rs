//! The zip package of an `.xlsx` workbook, measured before calamine opens it. Calamine
//! reserves room for the string count a file declares and unpacks whatever a part holds,
//! so a small hostile file could otherwise take all of the node's memory. Every part is
//! unpacked here once, metered against the limits and never kept; calamine then reads
//! the very same bytes (deflate is deterministic), which are known to fit.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use quick_xml::Reader as XmlReader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::DecodeLimits;
use crate::StoreError;

/// Parts a workbook may consist of; real ones have a few dozen.
const MAX_PARTS: usize = 10_000;
/// Excel's grid: a `dimension` beyond it is not a spreadsheet.
const MAX_SHEET_ROWS: u64 = 1_048_576;
const MAX_SHEET_COLUMNS: u64 = 16_384;

/// Refuses a workbook that breaks a limit, or whose package cannot be read.
pub(super) fn check(body: &[u8], limits: &DecodeLimits) -> Result<(), StoreError> {
    let mut archive = ZipArchive::new(Cursor::new(body)).map_err(|e| unreadable(format_args!("{e}")))?;
    if archive.len() > MAX_PARTS {
        return Err(unreadable(format_args!("it has {} parts; a workbook has at most {MAX_PARTS}", archive.len())));
    }
    // What the central directory declares is a cheap first refusal; it may lie, so
    // every part is measured again as it unpacks.
    let mut declared = 0u64;
    for index in 0..archive.len() {
        let part = archive.by_index_raw(index).map_err(|e| unreadable(format_args!("part {}: {e}", index + 1)))?;
        declared = declared.saturating_add(part.size());
    }
    if declared > limits.xlsx_max_decompressed_bytes {
        return Err(decompressed(limits, format!("the workbook declares {declared} bytes unpacked")));
    }
    let budget = Budget { remaining: Cell::new(limits.xlsx_max_decompressed_bytes), exceeded: Cell::new(false) };
    let mut tally = Tally::default();
    for index in 0..archive.len() {
        let part = archive.by_index(index).map_err(|e| unreadable(format_args!("part {}: {e}", index + 1)))?;
        let name = part.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("part {}", index + 1));
        let metered = Metered { inner: part, budget: &budget };
        let lower = name.to_ascii_lowercase();
        let result = if lower.ends_with(".xml") || lower.ends_with(".rels") {
            scan(&name, BufReader::new(metered), limits, &mut tally)
        } else {
            drain(&name, metered)
        };
        if budget.exceeded.get() {
            return Err(decompressed(
                limits,
                format!("the workbook unpacks to more bytes, reached in the part `{name}`"),
            ));
        }
        result?;
    }
    Ok(())
}

/// Bytes still allowed to unpack, shared by the parts of one workbook.
struct Budget {
    remaining: Cell<u64>,
    exceeded: Cell<bool>,
}

/// A part's unpacked bytes, failing as soon as they pass the budget.
struct Metered<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.budget.remaining.get();
        // One byte past the budget tells "exactly at the limit" from "beyond it".
        let allowed = usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX).min(buf.len());
        let read = self.inner.read(&mut buf[..allowed])?;
        if read as u64 > remaining {
            self.budget.exceeded.set(true);
            return Err(io::Error::other("unpacked size limit reached"));
        }
        self.budget.remaining.set(remaining - read as u64);
        Ok(read)
    }
}

fn drain(name: &str, mut part: impl Read) -> Result<(), StoreError> {
    io::copy(&mut part, &mut io::sink()).map(drop).map_err(|e| unreadable(format_args!("part `{name}`: {e}")))
}

/// What the scanned parts hold so far.
#[derive(Default)]
struct Tally {
    shared_strings: u64,
    cells: u64,
}

/// Reads one XML part to its end, counting shared strings and cells and checking what
/// the part declares. Parsed as calamine parses it, so both see the same elements.
fn scan(name: &str, part: impl BufRead, limits: &DecodeLimits, tally: &mut Tally) -> Result<(), StoreError> {
    let mut xml = XmlReader::from_reader(part);
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut root: Option<String> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let element = match xml.read_event_into(&mut buf) {
            Ok(Event::Start(element)) => element,
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => continue,
            Err(quick_xml::Error::Io(error)) => return Err(unreadable(format_args!("part `{name}`: {error}"))),
            Err(error) => {
                return Err(unreadable(format_args!(
                    "part `{name}` is not well-formed XML at byte {}: {error}",
                    xml.error_position()
                )));
            }
        };
        let local = element.local_name();
        let local = local.as_ref();
        let root = root.get_or_insert_with(|| local.to_owned());
        match (root.as_str(), local) {
            ("sst", "sst") => declared_strings(name, &element, limits)?,
            ("sst", "si") => {
                tally.shared_strings += 1;
                if tally.shared_strings > limits.xlsx_max_shared_strings {
                    let found = format!("`{name}` holds {} shared strings", tally.shared_strings);
                    return Err(strings_exceeded(limits, found));
                }
            }
            ("worksheet", "dimension") => within_grid(name, &element, "ref")?,
            ("worksheet", "row") => within_grid(name, &element, "r")?,
            ("worksheet", "c") => {
                within_grid(name, &element, "r")?;
                tally.cells += 1;
                if tally.cells > limits.xlsx_max_cells {
                    let found = format!("the worksheets hold {} cells, reached in `{name}`", tally.cells);
                    return Err(cells_exceeded(limits, found));
                }
            }
            _ => {}
        }
    }
}

/// `uniqueCount` is what calamine reserves room for; `count` counts the cells that use
/// a shared string. Every occurrence is checked, in case an attribute appears twice.
fn declared_strings(name: &str, sst: &BytesStart<'_>, limits: &DecodeLimits) -> Result<(), StoreError> {
    for attribute in sst.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| unreadable(format_args!("part `{name}`: {e}")))?;
        let key = attribute.key.local_name();
        let key = key.as_ref();
        if key != "uniqueCount" && key != "count" {
            continue;
        }
        let shown = attribute.value.as_ref();
        let value = declared_number(shown.as_bytes())
            .ok_or_else(|| unreadable(format_args!("part `{name}`: `{key}` is `{shown}`, not a number")))?;
        let (maximum, exceeded): (u64, fn(&DecodeLimits, String) -> StoreError) = if key == "uniqueCount" {
            (limits.xlsx_max_shared_strings, strings_exceeded)
        } else {
            (limits.xlsx_max_cells, cells_exceeded)
        };
        if value > maximum {
            return Err(exceeded(limits, format!("`{name}` declares {key}=\"{shown}\"")));
        }
    }
    Ok(())
}

/// A plain decimal number; one too large for `u64` reads as `u64::MAX`.
fn declared_number(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(raw.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0'))).unwrap_or(u64::MAX))
}

/// A `dimension` such as `A1:XFD1048576`, a row's `r` or a cell's `r` must lie within
/// Excel's grid: calamine's arithmetic on them overflows otherwise.
fn within_grid(name: &str, element: &BytesStart<'_>, attribute: &str) -> Result<(), StoreError> {
    let Ok(Some(reference)) = element.try_get_attribute(attribute) else { return Ok(()) };
    let text = reference.value.as_ref();
    if text.split(':').all(position_in_grid) {
        return Ok(());
    }
    let what = match element.local_name().as_ref() {
        "dimension" => "the dimension",
        "row" => "the row number",
        _ => "the cell reference",
    };
    let shown: String = text.chars().take(40).collect();
    Err(unreadable(format_args!(
        "part `{name}`: {what} `{shown}` lies outside a sheet's {MAX_SHEET_ROWS} rows and {MAX_SHEET_COLUMNS} columns"
    )))
}

/// `B7` or `7`: at most three column letters, then a row number, both within the grid.
fn position_in_grid(reference: &str) -> bool {
    let digits_at = reference.find(|c: char| c.is_ascii_digit()).unwrap_or(reference.len());
    let (letters, digits) = reference.split_at(digits_at);
    if letters.len() > 3 || !letters.bytes().all(|c| c.is_ascii_alphabetic()) || digits.len() > 7 {
        return false;
    }
    let column = letters.bytes().fold(0u64, |n, c| n * 26 + u64::from(c.to_ascii_uppercase() - b'A') + 1);
    let row = declared_number(digits.as_bytes());
    column <= MAX_SHEET_COLUMNS && row.is_some_and(|r| (1..=MAX_SHEET_ROWS).contains(&r))
}

fn unreadable(reason: std::fmt::Arguments<'_>) -> StoreError {
    StoreError::Malformed { reason: format!("not a readable .xlsx workbook: {reason}") }
}

fn decompressed(limits: &DecodeLimits, found: String) -> StoreError {
    let maximum = limits.xlsx_max_decompressed_bytes;
    StoreError::LimitExceeded { limit: "xlsx_max_decompressed_bytes", maximum, found }
}

fn strings_exceeded(limits: &DecodeLimits, found: String) -> StoreError {
    StoreError::LimitExceeded { limit: "xlsx_max_shared_strings", maximum: limits.xlsx_max_shared_strings, found }
}

fn cells_exceeded(limits: &DecodeLimits, found: String) -> StoreError {
    StoreError::LimitExceeded { limit: "xlsx_max_cells", maximum: limits.xlsx_max_cells, found }
}
