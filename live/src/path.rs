//! Where a column's value sits in a message: a dotted path with array indices, such as
//! `uplink_message.decoded_payload.level` or `uplink_message.rx_metadata[0].rssi`.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// A parsed path; it is written back as the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// The value at this path, if every step exists.
    pub fn find<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.steps.iter().try_fold(value, |value, step| match step {
            Step::Key(key) => value.as_object()?.get(key),
            Step::Index(index) => value.as_array()?.get(*index),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a path cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

impl FromStr for JsonPath {
    type Err = BadPath;

    fn from_str(text: &str) -> Result<Self, BadPath> {
        const LONGEST: usize = 512;
        if text.len() > LONGEST {
            return Err(BadPath(format!("is longer than {LONGEST} characters")));
        }
        let mut steps = Vec::new();
        for segment in text.split('.') {
            let (name, mut indices) = segment.split_once('[').map_or((segment, ""), |(n, rest)| (n, rest));
            if name.is_empty() {
                return Err(BadPath(format!("`{text}` has an empty step; write steps as `a.b[0].c`")));
            }
            if name.contains(']') {
                return Err(BadPath(format!("`{text}`: `]` without `[` in `{segment}`")));
            }
            steps.push(Step::Key(name.to_owned()));
            while !indices.is_empty() {
                let (index, rest) = indices
                    .split_once(']')
                    .ok_or_else(|| BadPath(format!("`{text}`: `[` without `]` in `{segment}`")))?;
                let index = index
                    .parse::<usize>()
                    .map_err(|_| BadPath(format!("`{text}`: `[{index}]` is not an array index such as [0]")))?;
                steps.push(Step::Index(index));
                indices = match rest {
                    "" => "",
                    rest => rest.strip_prefix('[').ok_or_else(|| {
                        BadPath(format!("`{text}`: `{rest}` after an index; continue with `.` or `[`"))
                    })?,
                };
            }
        }
        Ok(Self { text: text.to_owned(), steps })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> JsonPath {
        text.parse().expect("a path")
    }

    #[test]
    fn finds_keys_and_indices() {
        let message = json!({"uplink_message": {"decoded_payload": {"level": 2.5},
            "rx_metadata": [{"rssi": -97}, {"rssi": -80}]}, "m": [[1, 2], [3]]});
        assert_eq!(path("uplink_message.decoded_payload.level").find(&message), Some(&json!(2.5)));
        assert_eq!(path("uplink_message.rx_metadata[1].rssi").find(&message), Some(&json!(-80)));
        assert_eq!(path("m[0][1]").find(&message), Some(&json!(2)));
        assert_eq!(path("uplink_message.rx_metadata[2].rssi").find(&message), None);
        assert_eq!(path("uplink_message.decoded_payload.level.x").find(&message), None);
    }

    #[test]
    fn refuses_malformed_paths() {
        for text in ["", "a..b", ".a", "a.", "a[x]", "a[0", "a]", "a[0]b", "a[-1]", "[0]"] {
            assert!(text.parse::<JsonPath>().is_err(), "{text} was accepted");
        }
        assert_eq!(path("a[0].b").as_str(), "a[0].b");
    }
}
