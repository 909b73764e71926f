//! Guarded response decoding for every API kafkit speaks, at every version: the first two bytes
//! pick the API and version, the rest is the body. Nothing may panic or reserve memory beyond
//! what the input justifies (scripts/fuzz.sh runs with -malloc_limit_mb).
#![no_main]

use bytes::Bytes;
use kafkit_wire::api::SUPPORTED;
use kafkit_wire::guard::{check, decode_any_response, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [api_pick, version_pick, body @ ..] = data else {
        return;
    };
    let api = SUPPORTED[usize::from(*api_pick) % SUPPORTED.len()];
    let span = (api.versions.max - api.versions.min + 1) as u8;
    let version = api.versions.min + i16::from(version_pick % span);
    let checked = check(api.key, version, Kind::Response, body);
    let decoded = decode_any_response(api.key, version, Bytes::copy_from_slice(body));
    // The decoder never accepts what the guard refused.
    if checked.is_err() {
        assert!(decoded.is_err());
    }
});
