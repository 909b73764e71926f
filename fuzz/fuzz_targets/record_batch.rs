//! Record batch decoding (v2 with every codec, legacy magic 0/1): arbitrary bytes never panic or
//! over-allocate, and any v2 data batch that decodes re-encodes to one that decodes to the same
//! records.
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::{check_batches, limits};
use kafkit_wire::record::BatchReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_batches(BatchReader::with_limits(
        Bytes::copy_from_slice(data),
        limits(),
    ));
});
