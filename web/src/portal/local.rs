//! Times and numbers as the reader's language writes them. Times are German civil time
//! (Europe/Berlin) with the zone shown, on every page: the data is of German towns, and
//! their readers live by that clock. German pages write `87,5` and `1.234`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use maud::{Markup, html};

use super::lang::Lang;

impl Lang {
    /// `03.12.2026, 14:15 MEZ` or `3 Dec 2026, 14:15 CET`; empty for an impossible time.
    pub(crate) fn moment(self, millis: i64) -> String {
        let Some(utc) = DateTime::<Utc>::from_timestamp_millis(millis) else {
            return String::new();
        };
        let summer = is_summer_time(utc);
        let local = utc + Duration::hours(if summer { 2 } else { 1 });
        match self {
            Self::De => format!("{}, {}", local.format("%d.%m.%Y"), local.format("%H:%M")) + zone(self, summer),
            Self::En => format!("{}, {}", local.format("%-d %b %Y"), local.format("%H:%M")) + zone(self, summer),
        }
    }

    /// A chart's time mark: the day (`03.12.` / `3 Dec`) or the hour (`14:00`), local.
    pub(crate) fn tick(self, millis: i64, daily: bool) -> String {
        let Some(local) = DateTime::<Utc>::from_timestamp_millis(millis + berlin_offset_millis(millis)) else {
            return String::new();
        };
        match (self, daily) {
            (Self::De, true) => local.format("%d.%m.").to_string(),
            (Self::En, true) => local.format("%-d %b").to_string(),
            (_, false) => local.format("%H:%M").to_string(),
        }
    }

    /// The moment as a `<time>` element, machine-readable in its `datetime`.
    pub(crate) fn time(self, millis: i64) -> Markup {
        let iso = DateTime::<Utc>::from_timestamp_millis(millis).map(|t| t.to_rfc3339()).unwrap_or_default();
        html! { time datetime=(iso) { (self.moment(millis)) } }
    }

    /// `value` with `decimals` places: `1.234,5` in German, `1,234.5` in English.
    pub(crate) fn number(self, value: f64, decimals: usize) -> String {
        let (group, point) = match self {
            Self::De => ('.', ','),
            Self::En => (',', '.'),
        };
        let text = format!("{value:.decimals$}");
        let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let mut out = String::from(sign);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 && whole.len() > 4 {
                out.push(group);
            }
            out.push(digit);
        }
        if !fraction.is_empty() {
            out.push(point);
            out.push_str(fraction);
        }
        out
    }
}

/// How far German civil time is ahead of UTC at `millis`: one hour, or two in summer.
pub(crate) fn berlin_offset_millis(millis: i64) -> i64 {
    let summer = DateTime::<Utc>::from_timestamp_millis(millis).is_some_and(is_summer_time);
    if summer { 7_200_000 } else { 3_600_000 }
}

fn zone(lang: Lang, summer: bool) -> &'static str {
    match (lang, summer) {
        (Lang::De, false) => " MEZ",
        (Lang::De, true) => " MESZ",
        (Lang::En, false) => " CET",
        (Lang::En, true) => " CEST",
    }
}

/// Whether German clocks show summer time (UTC+2) at `utc`: by the EU rule in force since
/// 1996, from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October.
fn is_summer_time(utc: DateTime<Utc>) -> bool {
    let switch = |month| {
        let last_day = NaiveDate::from_ymd_opt(utc.year(), month, 31)?;
        let sunday = last_day - Duration::days(i64::from(last_day.weekday().num_days_from_sunday()));
        Some(sunday.and_hms_opt(1, 0, 0)?.and_utc())
    };
    match (switch(3), switch(10)) {
        (Some(start), Some(end)) => start <= utc && utc < end,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).expect("time").timestamp_millis()
    }

    #[test]
    fn times_are_german_civil_time_with_the_zone() {
        assert_eq!(Lang::De.moment(at("2026-12-03T13:15:00Z")), "03.12.2026, 14:15 MEZ");
        assert_eq!(Lang::En.moment(at("2026-12-03T13:15:00Z")), "3 Dec 2026, 14:15 CET");
        assert_eq!(Lang::De.moment(at("2026-07-01T22:30:00Z")), "02.07.2026, 00:30 MESZ");
        assert_eq!(Lang::En.moment(at("2026-07-01T22:30:00Z")), "2 Jul 2026, 00:30 CEST");
    }

    #[test]
    fn the_clocks_change_at_one_utc_on_the_last_sundays_of_march_and_october() {
        // 2026: 29 March and 25 October.
        assert_eq!(Lang::De.moment(at("2026-03-29T00:59:00Z")), "29.03.2026, 01:59 MEZ");
        assert_eq!(Lang::De.moment(at("2026-03-29T01:00:00Z")), "29.03.2026, 03:00 MESZ");
        assert_eq!(Lang::De.moment(at("2026-10-25T00:59:00Z")), "25.10.2026, 02:59 MESZ");
        assert_eq!(Lang::De.moment(at("2026-10-25T01:00:00Z")), "25.10.2026, 02:00 MEZ");
        // 2027: 28 March (the 31st is a Wednesday) and 31 October (a Sunday itself).
        assert_eq!(Lang::De.moment(at("2027-03-28T01:00:00Z")), "28.03.2027, 03:00 MESZ");
        assert_eq!(Lang::De.moment(at("2027-10-31T00:30:00Z")), "31.10.2027, 02:30 MESZ");
        assert_eq!(Lang::De.moment(at("2027-10-31T01:30:00Z")), "31.10.2027, 02:30 MEZ");
    }

    #[test]
    fn chart_marks_are_local_days_and_hours() {
        assert_eq!(Lang::De.tick(at("2026-12-02T23:00:00Z"), true), "03.12.");
        assert_eq!(Lang::En.tick(at("2026-12-02T23:00:00Z"), true), "3 Dec");
        assert_eq!(Lang::De.tick(at("2026-07-01T12:00:00Z"), false), "14:00");
    }

    #[test]
    fn numbers_take_the_language_s_marks() {
        assert_eq!(Lang::De.number(87.0, 1), "87,0");
        assert_eq!(Lang::En.number(87.0, 1), "87.0");
        assert_eq!(Lang::De.number(-1234.56, 1), "-1234,6");
        assert_eq!(Lang::De.number(12345.0, 0), "12.345");
        assert_eq!(Lang::En.number(1234567.25, 2), "1,234,567.25");
        assert_eq!(Lang::De.number(f64::NAN, 1), "NaN");
    }

    #[test]
    fn a_time_element_carries_the_instant() {
        let markup = Lang::De.time(at("2026-12-03T13:15:00Z")).into_string();
        assert_eq!(markup, r#"<time datetime="2026-12-03T13:15:00+00:00">03.12.2026, 14:15 MEZ</time>"#);
    }
}
