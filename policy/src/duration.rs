//! The one way a duration is written, wherever one is: a policy's aggregation bucket, a
//! view's refresh, deadline, window and bucket, an invitation's lifetime. A whole number
//! and a unit, `ms`, `s`, `m` (or `min`), `h` or `d`: `500ms`, `2s`, `15m`, `1h`, `7d`.
//! Each use sets its own bounds on top (a bucket of whole seconds, an invitation of at
//! least a second).

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
