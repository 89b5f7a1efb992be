//! Failpoints: named instants at which a test build makes the store fail on purpose, to
//! show what a crash or a failed fsync right there leaves behind.
//!
//! Set by `URBANMESH_FAILPOINT=name:action[,name:action…]`, where `abort` ends the process
//! at once (as `kill -9` would) and `error` makes the operation report an I/O error. Only
//! debug builds and builds with the `failpoints` feature read the variable; a release
//! build's points are empty and cost one branch on an empty list.

use std::io;

/// The environment variable that arms failpoints in test builds.
pub const FAILPOINT_ENV: &str = "URBANMESH_FAILPOINT";

/// The points the store knows, so that a misspelt name is refused rather than ignored.
pub(crate) const POINTS: &[&str] = &[
    // commit.rs: the group flush of the write-ahead log (after sled's flush returned).
    "wal-flush",
    // removal.rs: before and after the table's tombstone is durable, after its files are gone.
    "before-manifest-delete",
    "after-manifest-delete",
    "after-segments-delete",
    // segment.rs: the first segment folder exists, no segment is written yet.
    "segment-dir-created",
    // merging.rs: the merged segment is written, the manifest still names the small ones;
    // then the manifest names the merged one, the small ones' files are still there.
    "merge-written",
    "merge-swapped",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// `std::process::abort()`: no destructor, no flush, like `kill -9`.
    Abort,
    /// The operation fails with an I/O error, as a failing disk would make it.
    Error,
}

/// The failpoints armed for one store. Empty by default.
#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    armed: Vec<(&'static str, FailAction)>,
}

impl Failpoints {
    /// The points armed by [`FAILPOINT_ENV`]; none in release builds without the
    /// `failpoints` feature. A spec that cannot be read arms nothing and says why.
    pub fn from_env() -> Self {
        if !cfg!(any(debug_assertions, feature = "failpoints")) {
            return Self::default();
        }
        match std::env::var(FAILPOINT_ENV) {
            Ok(spec) => Self::parse(&spec).unwrap_or_else(|reason| {
                tracing::error!(%reason, "{FAILPOINT_ENV} ignored");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Reads `name:action[,name:action…]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut armed = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (name, action) = item.split_once(':').ok_or_else(|| format!("`{item}` is not `name:action`"))?;
            let point = POINTS
                .iter()
                .find(|point| **point == name)
                .ok_or_else(|| format!("unknown failpoint `{name}`; known: {}", POINTS.join(", ")))?;
            let action = match action {
                "abort" => FailAction::Abort,
                "error" => FailAction::Error,
                other => return Err(format!("unknown action `{other}` for `{name}`; use `abort` or `error`")),
            };
            armed.push((*point, action));
        }
        Ok(Self { armed })
    }

    /// Passes the point `name`: aborts the process or returns an error if it is armed.
    pub(crate) fn hit(&self, name: &str) -> io::Result<()> {
        match self.armed.iter().find(|(point, _)| *point == name).map(|(_, action)| action) {
            None => Ok(()),
            Some(FailAction::Abort) => {
                tracing::warn!(failpoint = name, "aborting at failpoint");
                std::process::abort()
            }
            Some(FailAction::Error) => Err(io::Error::other(format!("injected failure at failpoint `{name}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_refuses_unknown_ones() {
        let points = Failpoints::parse("wal-flush:error, after-manifest-delete:abort").expect("spec");
        assert_eq!(points.armed, vec![("wal-flush", FailAction::Error), ("after-manifest-delete", FailAction::Abort)]);
        assert!(points.hit("wal-flush").is_err());
        assert!(points.hit("segment-dir-created").is_ok());
        assert!(Failpoints::parse("").expect("empty").armed.is_empty());
        for bad in ["wal-flush", "wal-flush:explode", "no-such-point:abort", ":abort"] {
            assert!(Failpoints::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
