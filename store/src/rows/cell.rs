use chrono::NaiveDateTime;

/// One value as a source format presents it, before it is checked against a column type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Integers above `i64::MAX`, which JSON can carry.
    UInt(u64),
    Float(f64),
    Text(&'a str),
    /// A spreadsheet date or time, which has no time zone.
    DateTime(NaiveDateTime),
    /// A value the source cannot represent as a scalar (a JSON array, a spreadsheet error).
    Unsupported(String),
}

impl Cell<'_> {
    /// How the value looked, for error messages; long text is shortened.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Null => "null".into(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::UInt(u) => u.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(s) => {
                let shown: String = s.chars().take(40).collect();
                if shown.len() < s.len() { format!("\"{shown}…\"") } else { format!("\"{shown}\"") }
            }
            Self::DateTime(dt) => dt.to_string(),
            Self::Unsupported(what) => what.clone(),
        }
    }
}
