//! Anonymous refusals cannot grow the access log at will, and staff still learn how many
//! there were.

use std::time::Duration;

use chrono::Utc;
use urbanmesh_policy::{AuditLog, AuditQuery, AuditRecord, Interface, Outcome, RefusalLimits};

fn refusal(subject: &str, dataset: &str) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        subject: subject.into(),
        dataset: dataset.into(),
        purpose: None,
        decision: Outcome::Deny,
        reason: "not visible to anonymous".into(),
        rows: 0,
        bytes: 0,
        interface: Interface::Rest,
    }
}

fn everything(log: &AuditLog) -> Vec<AuditRecord> {
    log.query(&AuditQuery { limit: usize::MAX, ..AuditQuery::default() }).expect("query")
}

fn log(limits: RefusalLimits) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("meta")).expect("sled");
    let log = AuditLog::open_with(&db, limits).expect("audit log");
    (dir, log)
}

#[test]
fn ten_thousand_anonymous_refusals_add_a_bounded_number_of_records_and_their_count() {
    let (_dir, log) = log(RefusalLimits::default());
    for _ in 0..10_000 {
        log.append(&refusal("anonymous", "internal")).expect("append");
    }
    let burst = RefusalLimits::default().burst as usize;
    assert_eq!(everything(&log).len(), burst, "the burst is recorded one by one, the rest counted");
    log.flush().expect("flush");
    let records = everything(&log);
    assert_eq!(records.len(), burst + 1, "one summary record for the folded refusals");
    let summary = records.last().expect("summary");
    assert_eq!(
        (summary.subject.as_str(), summary.dataset.as_str(), summary.decision.as_str()),
        ("anonymous", "internal", "deny")
    );
    assert!(
        summary.reason.contains(&format!("folded: {} more such refusals", 10_000 - burst)),
        "staff see how many: {}",
        summary.reason
    );
}

#[test]
fn refusals_of_ten_thousand_invented_kinds_stay_within_the_capacity() {
    let limits = RefusalLimits { interval: Duration::from_secs(60), burst: 2, kinds: 100 };
    let (_dir, log) = log(limits);
    for i in 0..10_000 {
        log.append(&refusal("anonymous", &format!("guess-{i}"))).expect("append");
    }
    log.flush().expect("flush");
    let records = everything(&log);
    assert_eq!(records.len(), 101, "one record per tracked kind and one overflow summary");
    let overflow = records.iter().find(|r| r.dataset == "*").expect("overflow summary");
    assert!(overflow.reason.starts_with("9900 anonymous refusals from "), "{}", overflow.reason);
}

#[test]
fn a_window_that_ends_is_summed_up_without_another_request() {
    let limits = RefusalLimits { interval: Duration::from_millis(200), burst: 1, kinds: 16 };
    let (_dir, log) = log(limits);
    for _ in 0..50 {
        log.append(&refusal("anonymous", "internal")).expect("append");
    }
    // The writer thread closes the window once its interval is over.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let records = loop {
        let records = everything(&log);
        if records.len() == 2 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(10)); // polling interval, not a wait for time to pass
    };
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records[1].reason.contains("folded: 49 more such refusals"), "{}", records[1].reason);
}

#[test]
fn refusals_of_people_and_members_are_recorded_one_by_one() {
    let (_dir, log) = log(RefusalLimits { interval: Duration::from_secs(60), burst: 1, kinds: 16 });
    for subject in ["person:anna", "peer:12D3KooWPartner"] {
        for _ in 0..20 {
            log.append(&refusal(subject, "internal")).expect("append");
        }
    }
    let mut permit = refusal("anonymous", "public");
    permit.decision = Outcome::Permit;
    for _ in 0..20 {
        log.append(&permit).expect("append");
    }
    assert_eq!(everything(&log).len(), 60);
}
