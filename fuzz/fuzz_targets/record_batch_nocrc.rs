//! Like `record_batch`, but the CRC32C of the first batch is fixed up before decoding, so the
//! fuzzer reaches the record parser and the codecs instead of stopping at the checksum.
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::{check_batches, limits};
use kafkit_wire::record::BatchReader;
use libfuzzer_sys::fuzz_target;

/// Where v2 batch fields sit: batch length at 8..12, magic at 16, CRC at 17..21 covering 21..end.
fn fix_crc(data: &mut [u8]) {
    if data.len() < 21 || data[16] != 2 {
        return;
    }
    let length = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let Ok(length) = usize::try_from(length) else { return };
    let end = (12 + length).min(data.len());
    if end <= 21 {
        return;
    }
    let crc = crc32c::crc32c(&data[21..end]);
    data[17..21].copy_from_slice(&crc.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fix_crc(&mut data);
    check_batches(BatchReader::with_limits(Bytes::from(data), limits()));
});
