//! Like `record_batch`, but with the CRC check off (`DecodeLimits::with_crc_check(false)`, the
//! consumer's `check.crcs=false`), so the fuzzer reaches the record parser and the codecs of
//! every batch, v2 and legacy, instead of stopping at the checksum. The first batch's CRC32C is
//! still fixed up, so the checked path is driven past it too.
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::{check_batches, fix_crc, limits};
use kafkit_wire::record::BatchReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let unchecked = Bytes::from(data.to_vec());
    check_batches(BatchReader::with_limits(
        unchecked,
        limits().with_crc_check(false),
    ));
    let mut data = data.to_vec();
    fix_crc(&mut data);
    check_batches(BatchReader::with_limits(Bytes::from(data), limits()));
});
