//! The one way a duration is written, wherever one is: a policy's aggregation bucket, a
//! view's refresh, deadline, window and bucket, an invitation's lifetime. A whole number
//! and a unit, `ms`, `s`, `m` (or `min`), `h` or `d`: `500ms`, `2s`, `15m`, `1h`, `7d`.
//! Each use sets its own bounds on top (a bucket of whole seconds, an invitation of at
//! least a second).
//!
//! Definitions hold a [`Span`]: the duration parsed when the definition is read, and the
//! text as its author wrote it, which is what goes back out.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration anything may name: one (leap) year.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// `500ms`, `2s`, `15m`, `1h`, `7d` (and `0s`) → a duration of at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(millis).map(Duration::from_millis).filter(|d| *d <= MAX_DURATION)
}

/// A duration in the one grammar, as written (`15m`) and as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    text: String,
    value: Duration,
}

/// Text that is not a duration in the one grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration such as 500ms, 2s, 15m, 1h or 7d (at most a year)")]
pub struct NotASpan(pub String);

impl Span {
    /// `{n}s`; small enough to be within the bounds whatever `n` is.
    pub fn seconds(n: u16) -> Self {
        Self { text: format!("{n}s"), value: Duration::from_secs(n.into()) }
    }

    /// `{n}m`; at most 45 days.
    pub fn minutes(n: u16) -> Self {
        Self { text: format!("{n}m"), value: Duration::from_secs(u64::from(n) * 60) }
    }

    pub fn get(&self) -> Duration {
        self.value
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The span in whole seconds, if it is at least one and has no fraction of a second:
    /// a width that time buckets can have.
    pub fn whole_seconds(&self) -> Option<i64> {
        let seconds = i64::try_from(self.value.as_secs()).ok()?;
        (self.value.subsec_nanos() == 0 && seconds > 0).then_some(seconds)
    }
}

impl FromStr for Span {
    type Err = NotASpan;

    fn from_str(text: &str) -> Result<Self, NotASpan> {
        let value = parse_duration(text).ok_or_else(|| NotASpan(text.to_owned()))?;
        Ok(Self { text: text.trim().to_owned(), value })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// In the API document: the text as written, e.g. `15m`.
impl utoipa::PartialSchema for Span {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A whole number and a unit (`ms`, `s`, `m` or `min`, `h`, `d`), at most a year"))
            .pattern(Some(r"^\s*[0-9]+(ms|s|m|min|h|d)\s*$"))
            .examples(["15m"])
            .into()
    }
}

impl utoipa::ToSchema for Span {}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_reads_once_and_writes_back_as_written() {
        let span: Span = serde_json::from_str(r#"" 15m""#).expect("span");
        assert_eq!((span.get(), span.as_str()), (Duration::from_secs(900), "15m"));
        assert_eq!(serde_json::to_string(&span).expect("json"), r#""15m""#);
        assert_eq!("500ms".parse::<Span>().expect("span").whole_seconds(), None);
        assert_eq!("0s".parse::<Span>().expect("span").whole_seconds(), None);
        assert_eq!("2h".parse::<Span>().expect("span").whole_seconds(), Some(7200));
        let error = serde_json::from_str::<Span>(r#""1 Stunde""#).expect_err("not a span");
        assert!(error.to_string().contains("`1 Stunde` is not a duration"), "{error}");
    }

    #[test]
    fn reads_the_documented_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1min"), Some(Duration::from_secs(60)));
        for bad in ["", "7", "d", "1w", "-1s", "400d", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
