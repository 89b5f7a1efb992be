//! Anonymous refusals, folded. Anyone may ask for a hidden dataset as often as they like;
//! the access log must still tell staff that it happened and how often, without growing
//! by one record per request. Per kind of refusal (subject, dataset, interface, reason,
//! purpose) the first [`RefusalLimits::burst`] of a window are recorded one by one, the rest
//! only counted; when the window ends, one record says how many were folded into it.
//! Memory is bounded: at most [`RefusalLimits::kinds`] kinds are tracked at once, and
//! refusals of further kinds are counted together in one overflow record.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::{AuditRecord, Interface, Outcome};

/// How anonymous refusals are folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalLimits {
    /// Length of a window.
    pub interval: Duration,
    /// Refusals of one kind recorded one by one per window.
    pub burst: u32,
    /// Kinds of refusal tracked at once.
    pub kinds: usize,
}

impl Default for RefusalLimits {
    fn default() -> Self {
        Self { interval: Duration::from_secs(60), burst: 10, kinds: 4096 }
    }
}

/// Whether a record comes from a caller nobody authenticated: refusals of those are folded.
/// Members relaying for their own anonymous visitors are labelled `… for the public`.
pub(crate) fn is_anonymous_refusal(record: &AuditRecord) -> bool {
    record.decision == Outcome::Deny && (record.subject == "anonymous" || record.subject.ends_with(" for the public"))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Kind {
    subject: String,
    dataset: String,
    interface: Interface,
    reason: String,
    purpose: Option<String>,
}

impl Kind {
    fn of(record: &AuditRecord) -> Self {
        Self {
            subject: record.subject.clone(),
            dataset: record.dataset.clone(),
            interface: record.interface,
            reason: record.reason.clone(),
            purpose: record.purpose.clone(),
        }
    }
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    recorded: u32,
    folded: u64,
}

impl Window {
    fn open(now: Instant, at: DateTime<Utc>) -> Self {
        Self { opened: now, first_at: at, last_at: at, recorded: 0, folded: 0 }
    }
}

/// The windows of the kinds seen lately, and the overflow window.
#[derive(Debug)]
pub(crate) struct RefusalFold {
    limits: RefusalLimits,
    windows: HashMap<Kind, Window>,
    overflow: Option<Window>,
}

impl RefusalFold {
    pub(crate) fn new(limits: RefusalLimits) -> Self {
        Self { limits, windows: HashMap::new(), overflow: None }
    }

    /// Whether `record` is written itself; records of windows that have ended are added
    /// to `closed`.
    pub(crate) fn admit(&mut self, record: &AuditRecord, now: Instant, closed: &mut Vec<AuditRecord>) -> bool {
        let kind = Kind::of(record);
        let interval = self.limits.interval;
        if let Some(window) = self.windows.get(&kind)
            && now.duration_since(window.opened) >= interval
            && let Some(window) = self.windows.remove(&kind)
        {
            closed.extend(folded_record(&kind, &window));
        }
        if !self.windows.contains_key(&kind) && self.windows.len() >= self.limits.kinds {
            self.close_expired(now, closed);
        }
        if !self.windows.contains_key(&kind) && self.windows.len() >= self.limits.kinds {
            let window = self.overflow.get_or_insert_with(|| Window::open(now, record.at));
            window.folded += 1;
            window.last_at = record.at;
            return false;
        }
        let window = self.windows.entry(kind).or_insert_with(|| Window::open(now, record.at));
        if window.recorded < self.limits.burst {
            window.recorded += 1;
            true
        } else {
            window.folded += 1;
            window.last_at = record.at;
            false
        }
    }

    /// Ends the windows older than the interval, adding the records of what they folded.
    pub(crate) fn close_expired(&mut self, now: Instant, closed: &mut Vec<AuditRecord>) {
        let interval = self.limits.interval;
        self.windows.retain(|kind, window| {
            let open = now.duration_since(window.opened) < interval;
            if !open {
                closed.extend(folded_record(kind, window));
            }
            open
        });
        if self.overflow.as_ref().is_some_and(|w| now.duration_since(w.opened) >= interval)
            && let Some(window) = self.overflow.take()
        {
            closed.push(self.overflow_record(&window));
        }
    }

    /// Ends every window (at shutdown, so that no count is lost).
    pub(crate) fn close_all(&mut self, closed: &mut Vec<AuditRecord>) {
        for (kind, window) in self.windows.drain() {
            closed.extend(folded_record(&kind, &window));
        }
        if let Some(window) = self.overflow.take() {
            closed.push(self.overflow_record(&window));
        }
    }

    fn overflow_record(&self, window: &Window) -> AuditRecord {
        AuditRecord {
            at: Utc::now(),
            subject: "anonymous".into(),
            dataset: "*".into(),
            purpose: None,
            decision: Outcome::Deny,
            reason: format!(
                "{} anonymous refusals {}, not recorded one by one: more than {} kinds of refusal at once",
                window.folded,
                span(window),
                self.limits.kinds
            ),
            rows: 0,
            bytes: 0,
            interface: Interface::Any,
        }
    }
}

/// The record of the refusals a window folded, if it folded any.
fn folded_record(kind: &Kind, window: &Window) -> Option<AuditRecord> {
    (window.folded > 0).then(|| AuditRecord {
        at: Utc::now(),
        subject: kind.subject.clone(),
        dataset: kind.dataset.clone(),
        purpose: kind.purpose.clone(),
        decision: Outcome::Deny,
        reason: format!("{} (folded: {} more such refusals {})", kind.reason, window.folded, span(window)),
        rows: 0,
        bytes: 0,
        interface: kind.interface,
    })
}

fn span(window: &Window) -> String {
    format!(
        "from {} to {}",
        window.first_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        window.last_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(dataset: &str) -> AuditRecord {
        AuditRecord {
            at: Utc::now(),
            subject: "anonymous".into(),
            dataset: dataset.into(),
            purpose: None,
            decision: Outcome::Deny,
            reason: "not visible to anonymous".into(),
            rows: 0,
            bytes: 0,
            interface: Interface::Rest,
        }
    }

    const LIMITS: RefusalLimits = RefusalLimits { interval: Duration::from_secs(60), burst: 3, kinds: 2 };

    #[test]
    fn a_burst_is_recorded_then_counted_then_summed_up_when_the_window_ends() {
        let mut fold = RefusalFold::new(LIMITS);
        let start = Instant::now();
        let mut closed = Vec::new();
        let written = (0..1000).filter(|_| fold.admit(&refusal("hidden"), start, &mut closed)).count();
        assert_eq!(written, 3);
        assert!(closed.is_empty());
        fold.close_expired(start + Duration::from_secs(59), &mut closed);
        assert!(closed.is_empty(), "the window is still open");
        // The next refusal after the window starts a new one and reports the old one.
        assert!(fold.admit(&refusal("hidden"), start + Duration::from_secs(60), &mut closed));
        let [summary] = closed.as_slice() else { panic!("one summary expected: {closed:?}") };
        assert_eq!((summary.dataset.as_str(), summary.interface), ("hidden", Interface::Rest));
        assert!(summary.reason.starts_with("not visible to anonymous (folded: 997 more such refusals from "));
    }

    #[test]
    fn kinds_beyond_the_capacity_share_one_overflow_record() {
        let mut fold = RefusalFold::new(LIMITS);
        let start = Instant::now();
        let mut closed = Vec::new();
        let written = (0..10_000).filter(|i| fold.admit(&refusal(&format!("d{i}")), start, &mut closed)).count();
        assert_eq!(written, 2, "one record for each of the two kinds tracked");
        assert_eq!(fold.windows.len(), 2);
        fold.close_all(&mut closed);
        let [overflow] = closed.as_slice() else { panic!("only the overflow folded anything: {closed:?}") };
        assert_eq!(overflow.dataset, "*");
        assert!(overflow.reason.starts_with("9998 anonymous refusals from "), "{}", overflow.reason);
    }

    #[test]
    fn only_anonymous_refusals_are_folded() {
        let mut record = refusal("hidden");
        assert!(is_anonymous_refusal(&record));
        record.subject = "peer:12D3KooW for the public".into();
        assert!(is_anonymous_refusal(&record));
        record.subject = "person:anna".into();
        assert!(!is_anonymous_refusal(&record));
        record.subject = "anonymous".into();
        record.decision = Outcome::Permit;
        assert!(!is_anonymous_refusal(&record));
    }
}
