//! Whole response frames (header + body) for a run-time API and version.
#![no_main]

use bytes::Bytes;
use kafkit_wire::api::SUPPORTED;
use kafkit_wire::header::decode_any_response_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [api_pick, version_pick, frame @ ..] = data else {
        return;
    };
    let api = SUPPORTED[usize::from(*api_pick) % SUPPORTED.len()];
    let span = (api.versions.max - api.versions.min + 1) as u8;
    let version = api.versions.min + i16::from(version_pick % span);
    let correlation_id = frame
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let _ = decode_any_response_frame(
        api.key,
        version,
        correlation_id,
        Bytes::copy_from_slice(frame),
    );
});
