//! The memory-class check of record decoding, at the 16 MiB limits of `bomb_limits` and seeded
//! with decompression bombs (fuzz/seeds/record_limits: 2.3M minimal records, 8M minimal
//! headers, gzip): every batch is decoded whole and streamed, below the CRC, under a counting
//! allocator; each peak stays within `memory_bound`, a whole batch costs at most
//! `max_decoded_size`, and a batch over a limit is refused with that limit's typed error. Slow by
//! design (each bomb-derived input inflates 16 MiB): the throughput targets `record_batch`,
//! `record_batch_nocrc` and `record_stream` run with the small `limits` and no bombs.
#![no_main]

use bytes::Bytes;
use kafkit_fuzz::bomb_limits;
use kafkit_fuzz::memory::{check_memory_bound, Counting};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    check_memory_bound(
        Bytes::copy_from_slice(data),
        bomb_limits().with_crc_check(false),
    );
});
