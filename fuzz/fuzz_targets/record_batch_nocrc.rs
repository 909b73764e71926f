//! Like `record_batch`, but the CRC32C of the first batch is fixed up before decoding, so the
//! fuzzer reaches the record parser and the codecs instead of stopping at the checksum.
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::{check_batches, fix_crc, limits};
use kafkit_wire::record::BatchReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fix_crc(&mut data);
    check_batches(BatchReader::with_limits(Bytes::from(data), limits()));
});
