//! Policy benchmark: latency of the decision point for the Herford policy (the first rule
//! matching, the second, a refusal, staff), and the cost of audit records written by 64
//! concurrent readers, against the same number of plain sled inserts of equal size as the
//! reference measured in the same run.
//!
//! `cargo run --release -p urbanmesh-policy --example policy_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use urbanmesh_policy::{Access, AuditLog, AuditRecord, Interface, Outcome, Person, Policy, Subject};

const DECISIONS: usize = 200_000;
const READERS: usize = 64;
const RECORDS_PER_READER: usize = 2_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    decisions()?;
    audit()?;
    Ok(())
}

fn herford() -> Result<Policy, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "visibility": "federation",
        "rules": [
            {"assignee": {"peers": ["12D3KooWPartnerPartnerPartnerPartnerPartnerPartner"]},
             "purposes": ["urban planning"], "valid_until": "2099-12-31T23:00:00Z"},
            {"assignee": {"roles": ["researcher"]}, "purposes": ["research"], "max_rows": 100000},
            {"assignee": "federation", "masked": ["sensor_serial"],
             "aggregate": {"bucket": "1h", "min_group": 10, "weight": "count"}}
        ],
        "attribution": "Stadt Herford"
    }))
}

fn decisions() -> Result<(), Box<dyn std::error::Error>> {
    let policy = herford()?;
    let partner = Subject::Member { peer: "12D3KooWPartnerPartnerPartnerPartnerPartnerPartner".into() };
    let other = Subject::Member { peer: "12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherOth".into() };
    let staff = Subject::Person(Person { id: "s".into(), name: None, home: true, roles: vec!["viewer".into()] });
    let cases: [(&str, &Subject, Option<&str>); 4] = [
        ("partner, first rule", &partner, Some("urban planning")),
        ("member, aggregate rule", &other, None),
        ("anonymous, refused", &Subject::Anonymous, None),
        ("staff", &staff, None),
    ];
    println!("decision latency ({DECISIONS} decisions per case, one thread)");
    for (name, subject, purpose) in cases {
        let mut samples = Vec::with_capacity(DECISIONS);
        for _ in 0..DECISIONS {
            let started = Instant::now();
            let decision = policy.decide(subject, &Access { purpose, now: Utc::now() });
            std::hint::black_box(decision);
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "  {name:<24} p50 {:>6.2} µs  p99 {:>6.2} µs  max {:>8.2} µs",
            micros(samples[DECISIONS / 2]),
            micros(samples[DECISIONS * 99 / 100]),
            micros(samples[DECISIONS - 1])
        );
    }
    Ok(())
}

fn audit() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path().join("audit"))?;
    let log = AuditLog::open(&db)?;
    let record = AuditRecord {
        at: Utc::now(),
        subject: "peer:12D3KooWPartnerPartnerPartnerPartnerPartnerPartner".into(),
        dataset: "passanten".into(),
        purpose: Some("urban planning".into()),
        decision: Outcome::Permit,
        reason: "rule 0".into(),
        rows: 8760,
        bytes: 1_234_567,
        interface: Interface::Flight,
    };
    let size = serde_json::to_vec(&record)?.len();
    let reference = db.open_tree("reference")?;
    let total = READERS * RECORDS_PER_READER;
    println!("audit records, {READERS} concurrent writers, {total} records of {size} bytes");
    for round in 1..=3 {
        let (audit_time, audit_p99) = concurrently({
            let log = log.clone();
            let record = record.clone();
            move |_, _| {
                let record = AuditRecord { at: Utc::now(), ..record.clone() };
                log.append(&record).map_err(|e| e.to_string())
            }
        })?;
        let value = vec![b'x'; size];
        let (plain_time, plain_p99) = concurrently({
            let reference = reference.clone();
            let db = db.clone();
            move |_, _| {
                let key = db.generate_id().map_err(|e| e.to_string())?.to_be_bytes();
                reference.insert(key, value.clone()).map(drop).map_err(|e| e.to_string())
            }
        })?;
        println!(
            "  round {round}: audit {:>9.0} records/s p99 {:>6.1} µs | plain sled insert {:>9.0} /s p99 {:>6.1} µs | ratio {:.2}",
            total as f64 / audit_time.as_secs_f64(),
            micros(audit_p99),
            total as f64 / plain_time.as_secs_f64(),
            micros(plain_p99),
            audit_time.as_secs_f64() / plain_time.as_secs_f64()
        );
    }
    Ok(())
}

/// Runs `write` RECORDS_PER_READER times on each of READERS threads; total time and p99.
fn concurrently<F>(write: F) -> Result<(Duration, Duration), Box<dyn std::error::Error>>
where
    F: Fn(usize, usize) -> Result<(), String> + Send + Sync + 'static,
{
    let write = Arc::new(write);
    let started = Instant::now();
    let threads: Vec<_> = (0..READERS)
        .map(|reader| {
            let write = Arc::clone(&write);
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut samples = Vec::with_capacity(RECORDS_PER_READER);
                for i in 0..RECORDS_PER_READER {
                    let one = Instant::now();
                    write(reader, i)?;
                    samples.push(one.elapsed());
                }
                Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(READERS * RECORDS_PER_READER);
    for thread in threads {
        samples.extend(thread.join().map_err(|_| "writer thread panicked")??);
    }
    let elapsed = started.elapsed();
    samples.sort();
    Ok((elapsed, samples[samples.len() * 99 / 100]))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
