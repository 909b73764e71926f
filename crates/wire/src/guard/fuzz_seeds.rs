//! Writes the committed fuzz seeds of the response decoders: one input per (API, version) of
//! [`SUPPORTED`] and per shape (the default message, and a schema-driven one with arrays,
//! nulls and tagged fields from [`Gen`]), laid out as each target reads its input. Run after
//! changing [`SUPPORTED`] and commit the result:
//!
//! ```text
//! cargo test -p kafkit-wire --lib guard::fuzz_seeds -- --ignored
//! ```
//!
//! Targets and layouts (see `fuzz/fuzz_targets/`): `response` takes
//! `[api index, version - min, body…]`, `response_header` the same with a response header
//! before the body, `frame` a split point and a length-prefixed frame (newest version of each
//! API only: the frame decoder does not read the API).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Encodable;

use super::tests::Gen;
use super::{schema_for, Kind};
use crate::api::{visit_responses, ResponseVisitor, SUPPORTED};
use crate::guard::GuardedResponse;

/// The schema-driven seed of [`Gen`] used for the populated shape.
const GEN_SEED: u64 = 7;

fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn header(api: crate::api::ApiKey, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, api.response_header_version(version))
        .expect("a default header encodes");
    buf.to_vec()
}

/// The default message of every response at every version of its row, encoded by
/// kafka-protocol.
#[derive(Default)]
struct Defaults(BTreeMap<(i16, i16), Vec<u8>>);

impl ResponseVisitor for Defaults {
    fn visit<R>(&mut self)
    where
        R: GuardedResponse + Encodable + Default + PartialEq + std::fmt::Debug,
    {
        let row = SUPPORTED
            .iter()
            .find(|row| row.key == R::API_KEY)
            .expect("a row per response");
        for version in row.versions.min..=row.versions.max {
            let mut buf = BytesMut::new();
            R::default()
                .encode(&mut buf, version)
                .expect("a default response encodes");
            self.0.insert((R::API_KEY as i16, version), buf.to_vec());
        }
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand after changing SUPPORTED"]
fn write_response_seeds() {
    let (response, framed, frames) = (dir("response"), dir("response_header"), dir("frame"));
    for d in [&response, &framed, &frames] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).expect("seed directory");
    }
    let mut defaults = Defaults::default();
    visit_responses(&mut defaults);
    let mut written = 0;
    for (index, row) in SUPPORTED.iter().enumerate() {
        let schema = schema_for(row.key, Kind::Response).expect("every API has a schema");
        let pick = u8::try_from(index).expect("fewer than 256 APIs");
        for version in row.versions.min..=row.versions.max {
            let vpick = u8::try_from(version - row.versions.min).expect("small span");
            let bodies = [
                ("default", defaults.0[&(row.key as i16, version)].clone()),
                ("gen", Gen::new(GEN_SEED, schema, version).message(schema)),
            ];
            for (shape, body) in bodies {
                let name = format!("{:?}-v{version}-{shape}", row.key);
                let mut input = vec![pick, vpick];
                input.extend_from_slice(&body);
                std::fs::write(response.join(&name), &input).expect("write seed");
                let mut input = vec![pick, vpick];
                input.extend_from_slice(&header(row.key, version, 1));
                input.extend_from_slice(&body);
                std::fs::write(framed.join(&name), &input).expect("write seed");
                written += 2;
                if version == row.versions.max {
                    let mut frame = BytesMut::new();
                    let mut payload = header(row.key, version, 1);
                    payload.extend_from_slice(&body);
                    frame.put_u8(3);
                    frame.put_i32(i32::try_from(payload.len()).expect("small"));
                    frame.extend_from_slice(&payload);
                    std::fs::write(frames.join(&name), &frame).expect("write seed");
                    written += 1;
                }
            }
        }
    }
    assert!(written > 2 * SUPPORTED.len());
    println!("wrote {written} seeds");
}
