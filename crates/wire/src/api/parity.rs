//! Protocol parity: [`SUPPORTED`] against the newest stable message versions that the
//! `kafka-protocol` crate was generated with (Kafka 4.1.0's schemas, unstable versions left
//! out). Every API's ceiling is the newest stable version unless its row gives a `capped`
//! reason, so a kafka-protocol upgrade that raises a version fails here until someone raises
//! the row or writes why not.

use std::fmt::Debug;

use kafka_protocol::protocol::Request;

use crate::api::{visit_requests, RequestVisitor, SupportedApi, SUPPORTED};
use crate::guard::{schema_versions, Kind};

/// Collects every disagreement between a row of [`SUPPORTED`] and kafka-protocol.
#[derive(Default)]
struct Parity {
    problems: Vec<String>,
    visited: usize,
    capped: Vec<String>,
}

impl Parity {
    fn judge(&mut self, row: &SupportedApi, newest: (i16, i16)) {
        let (oldest, newest) = newest;
        let name = format!("{:?}", row.key);
        let ours = row.versions;
        if ours.min < oldest || ours.max > newest {
            self.problems.push(format!(
                "{name}: kafkit {}..={} is outside kafka-protocol's {oldest}..={newest}",
                ours.min, ours.max
            ));
        }
        if ours.min > ours.max {
            self.problems
                .push(format!("{name}: empty range {}..={}", ours.min, ours.max));
        }
        match (ours.max < newest, row.capped) {
            (true, None) => self.problems.push(format!(
                "{name}: kafkit stops at v{} but Kafka's newest stable is v{newest}: raise the row \
                 (and sample the new version in crates/client/src/request_versions.rs) or give \
                 it a capped reason",
                ours.max
            )),
            (false, Some(reason)) => self.problems.push(format!(
                "{name}: reaches Kafka's newest v{newest} but still says it is capped ({reason})"
            )),
            (true, Some(reason)) if reason.trim().len() < 20 => self
                .problems
                .push(format!("{name}: capped reason {reason:?} says too little")),
            (true, Some(reason)) => self
                .capped
                .push(format!("{name} v{} < v{newest}: {reason}", ours.max)),
            (false, None) => {}
        }
        // The guarded decoder must know every version kafkit may negotiate.
        for kind in [Kind::Request, Kind::Response] {
            match schema_versions(row.key, kind) {
                Some((lo, hi)) if lo <= ours.min && ours.max <= hi => {}
                other => self.problems.push(format!(
                    "{name}: guard schema {kind:?} covers {other:?}, not {}..={}",
                    ours.min, ours.max
                )),
            }
        }
    }
}

impl RequestVisitor for Parity {
    fn visit<R>(&mut self)
    where
        R: Request + Default + PartialEq + Debug,
    {
        self.visited += 1;
        match SUPPORTED.iter().find(|row| row.key as i16 == R::KEY) {
            Some(row) => self.judge(row, (R::VERSIONS.min, R::VERSIONS.max)),
            None => self
                .problems
                .push(format!("request key {} has no row", R::KEY)),
        }
    }
}

#[test]
fn every_ceiling_is_kafkas_newest_stable_version_or_says_why_not() {
    let mut parity = Parity::default();
    visit_requests(&mut parity);
    assert_eq!(parity.visited, SUPPORTED.len(), "one request type per row");
    assert!(
        parity.problems.is_empty(),
        "protocol parity with kafka-protocol:\n{}",
        parity.problems.join("\n")
    );
    // What is capped today, for the record (run with --nocapture).
    for line in &parity.capped {
        println!("capped: {line}");
    }
}

#[test]
fn the_table_has_one_row_per_api_in_key_order() {
    let keys: Vec<i16> = SUPPORTED.iter().map(|row| row.key as i16).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(keys, sorted);
}

#[test]
fn a_raised_version_without_a_reason_is_caught() {
    // The negative control: a row one version below kafka-protocol's newest, without a
    // reason, fails; with a reason it passes; a reason on an uncapped row fails.
    let row = |max, capped| SupportedApi {
        key: crate::api::ApiKey::Heartbeat,
        versions: crate::api::VersionRange { min: 0, max },
        capped,
    };
    let newest = (0, 4);
    let mut p = Parity::default();
    p.judge(&row(3, None), newest);
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    let mut p = Parity::default();
    p.judge(&row(3, Some("a reason long enough to read")), newest);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let mut p = Parity::default();
    p.judge(&row(4, Some("a reason long enough to read")), newest);
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
}
