//! Lazy record decoding (`BatchReader::next_streaming`, one record at a time) against the whole
//! decode, below the CRC (fixed up like `record_batch_nocrc`): same records, never more than
//! declared, fused after an error. At the small `limits` (decoded memory at the bomb limits is
//! `record_limits`' check).
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::{check_streaming, fix_crc, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fix_crc(&mut data);
    check_streaming(Bytes::from(data), limits());
});
