//! Hostile `.xlsx` files: each is refused with the limit or the part at fault, before
//! calamine allocates for it, and none makes the decoder panic.

mod common;

use common::*;
use proptest::prelude::*;
use urbanmesh_store::StoreError;
use urbanmesh_store::decode::{DecodeLimits, Format, decode};

fn read(body: &[u8], limits: &DecodeLimits) -> Result<usize, StoreError> {
    decode(Format::Xlsx, schema(), body, limits).map(|batch| batch.num_rows())
}

fn limit_of(result: Result<usize, StoreError>) -> (&'static str, String) {
    match result {
        Err(error @ StoreError::LimitExceeded { .. }) => {
            let text = error.to_string();
            let StoreError::LimitExceeded { limit, .. } = error else { unreachable!() };
            (limit, text)
        }
        other => panic!("expected a limit to be exceeded, got {other:?}"),
    }
}

fn malformed(result: Result<usize, StoreError>) -> String {
    match result {
        Err(StoreError::Malformed { reason }) => reason,
        other => panic!("expected a malformed workbook, got {other:?}"),
    }
}

#[test]
fn a_good_workbook_is_read() {
    assert_eq!(read(&good_workbook(), &DecodeLimits::default()).expect("read"), 2);
}

#[test]
fn a_huge_declared_shared_string_count_is_refused_before_calamine_reserves_it() {
    let header = format!("{}{}", shared("A1", 0), shared("B1", 1));
    for count in ["300000000000000000", "18446744073709551615", "99999999999999999999999999"] {
        let strings = shared_strings(&format!(r#"count="2" uniqueCount="{count}""#), &["station", "value"]);
        let body = workbook(&sheet("A1:B1", &[header.clone()]), Some(&strings));
        let (limit, text) = limit_of(read(&body, &DecodeLimits::default()));
        assert_eq!(limit, "xlsx_max_shared_strings");
        assert!(text.contains(count) && text.contains("1000000"), "{text}");
    }
    // `count` (cells that use a shared string) is held to the cell limit.
    let strings = shared_strings(r#"count="300000000000000000" uniqueCount="2""#, &["station", "value"]);
    let body = workbook(&sheet("A1:B1", &[header.clone()]), Some(&strings));
    assert_eq!(limit_of(read(&body, &DecodeLimits::default())).0, "xlsx_max_cells");
    // A second `uniqueCount` after a harmless one is seen too.
    let strings = shared_strings(r#"uniqueCount="2" uniqueCount="300000000000000000""#, &["station", "value"]);
    let body = workbook(&sheet("A1:B1", &[header.clone()]), Some(&strings));
    assert_eq!(limit_of(read(&body, &DecodeLimits::default())).0, "xlsx_max_shared_strings");
    let strings = shared_strings(r#"uniqueCount="-1""#, &["station", "value"]);
    let reason = malformed(read(&workbook(&sheet("A1:B1", &[header]), Some(&strings)), &DecodeLimits::default()));
    assert!(reason.contains("uniqueCount") && reason.contains("sharedStrings.xml"), "{reason}");
}

#[test]
fn more_shared_strings_or_cells_than_allowed_are_refused() {
    let limits = DecodeLimits { xlsx_max_shared_strings: 3, xlsx_max_cells: 5, ..DecodeLimits::default() };
    let header = format!("{}{}", shared("A1", 0), shared("B1", 1));
    let strings = shared_strings("", &["station", "value", "a", "b"]);
    let (limit, text) = limit_of(read(&workbook(&sheet("A1:B1", &[header.clone()]), Some(&strings)), &limits));
    assert_eq!(limit, "xlsx_max_shared_strings");
    assert!(text.contains("holds 4 shared strings"), "{text}");
    let rows: Vec<String> = std::iter::once(header)
        .chain((2..5).map(|r| format!("{}{}", inline(&format!("A{r}"), "x"), number(&format!("B{r}"), "1"))))
        .collect();
    let strings = shared_strings("", &["station", "value"]);
    let (limit, text) = limit_of(read(&workbook(&sheet("A1:B4", &rows), Some(&strings)), &limits));
    assert_eq!(limit, "xlsx_max_cells");
    assert!(text.contains("6 cells"), "{text}");
}

#[test]
fn a_dimension_beyond_the_grid_is_refused_and_one_at_its_edge_is_not() {
    let header = format!("{}{}", inline("A1", "station"), inline("B1", "value"));
    for dimension in ["A1:XFE1", "A1:B1048577", "A1:ZZZZZZZZZZZZZZZZ99", "A1:B99999999999999999999999"] {
        let reason = malformed(read(&workbook(&sheet(dimension, &[header.clone()]), None), &DecodeLimits::default()));
        assert!(reason.contains("dimension") && reason.contains(dimension), "{reason}");
    }
    // Cell references that would overflow calamine's arithmetic.
    for reference in ["ZZZZZZZZZZZZZZ1", "A99999999999", "XFE1"] {
        let row = format!("{}{}", inline(reference, "Dalke"), number("B2", "1"));
        let reason =
            malformed(read(&workbook(&sheet("A1:B2", &[header.clone(), row]), None), &DecodeLimits::default()));
        assert!(reason.contains("cell reference") && reason.contains(reference), "{reason}");
    }
    let row = format!("{}{}", inline("A2", "Dalke"), number("B2", "1"));
    let body = workbook(&sheet("A1:XFD1048576", &[header, row]), None);
    assert_eq!(read(&body, &DecodeLimits::default()).expect("the edge of the grid"), 1);
}

/// A sheet that unpacks to `size` bytes: valid XML padded with whitespace.
fn bomb_sheet(size: usize) -> Vec<u8> {
    let mut sheet = sheet("A1:B1", &[format!("{}{}", inline("A1", "station"), inline("B1", "value"))]).into_bytes();
    let at = sheet.len() - "</worksheet>".len();
    sheet.splice(at..at, std::iter::repeat_n(b' ', size));
    sheet
}

#[test]
fn a_deflate_bomb_is_refused_by_its_declared_size_and_when_the_size_lies() {
    let limits = DecodeLimits { xlsx_max_decompressed_bytes: 1 << 20, ..DecodeLimits::default() };
    let body = zip(&[("_rels/.rels", Vec::new()), ("xl/worksheets/sheet1.xml", bomb_sheet(8 << 20))]);
    assert!(body.len() < 64 * 1024, "a bomb is small: {} bytes", body.len());
    let (limit, text) = limit_of(read(&body, &limits));
    assert_eq!(limit, "xlsx_max_decompressed_bytes");
    assert!(text.contains("declares"), "{text}");
    // Declared sizes that lie are caught while unpacking: a part that unpacks past its
    // declared size is refused by name.
    let mut lying = body;
    lie_about_sizes(&mut lying, 100);
    let reason = malformed(read(&lying, &limits));
    assert!(reason.contains("xl/worksheets/sheet1.xml") && reason.contains("declared"), "{reason}");
    // Each part within its declared size, together past the limit: metered as they unpack.
    let parts: Vec<(String, Vec<u8>)> = (0..40).map(|i| (format!("xl/media/p{i}.bin"), vec![0u8; 40_000])).collect();
    let parts: Vec<(&str, Vec<u8>)> = parts.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let mut lying = zip(&parts);
    lie_about_sizes(&mut lying, 40_000);
    let limits = DecodeLimits { xlsx_max_decompressed_bytes: 100_000, ..limits };
    assert!(matches!(
        read(&lying, &limits),
        Err(StoreError::LimitExceeded { limit: "xlsx_max_decompressed_bytes", .. })
    ));
}

#[test]
fn wrong_xml_and_truncated_parts_name_the_part() {
    let header = format!("{}{}", shared("A1", 0), shared("B1", 1));
    let broken = r#"<sst xmlns="x" uniqueCount="2"><si><t>station</t></si><si><t>value</t></si"#;
    let reason = malformed(read(&workbook(&sheet("A1:B1", &[header]), Some(broken)), &DecodeLimits::default()));
    assert!(reason.contains("sharedStrings.xml"), "{reason}");
    let good = good_workbook();
    for end in [good.len() / 3, good.len() / 2, good.len() - 30, good.len() - 1] {
        let error = read(&good[..end], &DecodeLimits::default()).expect_err("a truncated workbook");
        assert!(matches!(error, StoreError::Malformed { .. }), "{error:?}");
    }
}

fn hostile_count() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..2_000_000).prop_map(|n| n.to_string()),
        "[0-9]{18,40}",
        "[ -~]{0,12}",
    ]
}

fn cell() -> impl Strategy<Value = String> {
    let reference = prop_oneof![
        "[A-C][1-9]".prop_map(String::from),
        "[A-Z]{1,4}[0-9]{1,12}".prop_map(String::from),
        "[ -~]{0,6}".prop_map(String::from),
    ];
    (reference, 0u8..6, "[ -~&&[^<&]]{0,12}", any::<u64>()).prop_map(|(r, kind, text, n)| match kind {
        0 => shared(&r, (n % 6) as usize),
        1 => shared(&r, n as usize),
        2 => number(&r, &text),
        3 => inline(&r, &text),
        4 => format!(r#"<c r="{r}" t="b"><v>{}</v></c>"#, n % 3),
        _ => format!(r#"<c r="{r}" t="e"><v>#{text}</v></c>"#),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_declared_count_is_checked_before_it_is_used(unique in hostile_count(), count in hostile_count()) {
        let limits = DecodeLimits { xlsx_max_shared_strings: 1000, xlsx_max_cells: 1000, ..DecodeLimits::default() };
        let strings = shared_strings(&format!(r#"count="{count}" uniqueCount="{unique}""#), &["station", "value"]);
        let header = format!("{}{}", shared("A1", 0), shared("B1", 1));
        let result = read(&workbook(&sheet("A1:B1", &[header]), Some(&strings)), &limits);
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let big = |s: &str| s.parse::<u64>().map_or(true, |n| n > 1000);
        match &result {
            Err(error) => assert_explained(error),
            Ok(_) => prop_assert!(false, "a header alone has no rows"),
        }
        if numeric(&unique) && numeric(&count) && (big(&unique) || big(&count)) {
            prop_assert!(matches!(result, Err(StoreError::LimitExceeded { .. })), "{:?}", result);
        }
        if !numeric(&unique) || !numeric(&count) {
            let refused = matches!(result, Err(StoreError::Malformed { .. } | StoreError::LimitExceeded { .. }));
            prop_assert!(refused, "{:?}", result);
        }
    }

    #[test]
    fn generated_sheets_never_panic(rows in prop::collection::vec(prop::collection::vec(cell(), 0..5), 0..8)) {
        let header = format!("{}{}", shared("A1", 0), shared("B1", 1));
        let rows: Vec<String> = std::iter::once(header).chain(rows.into_iter().map(|r| r.concat())).collect();
        let strings = shared_strings("", &["station", "value", "Dalke", "1.5", "", "x"]);
        match read(&workbook(&sheet("A1:C9", &rows), Some(&strings)), &DecodeLimits::default()) {
            Ok(rows) => prop_assert!(rows <= 8),
            Err(error) => assert_explained(&error),
        }
    }

    #[test]
    fn damaged_packages_never_panic(cut in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6)) {
        let mut body = good_workbook();
        for (at, byte) in flips {
            let at = at.index(body.len());
            body[at] = byte;
        }
        let end = cut.index(body.len() + 1).max(1);
        match read(&body[..end], &DecodeLimits::default()) {
            Ok(rows) => prop_assert!(rows <= 2),
            Err(error) => assert_explained(&error),
        }
    }
}
