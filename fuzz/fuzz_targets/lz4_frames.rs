//! kafkit's LZ4 frame decoder (block by block, straight into the output) against `lz4_flex`'s
//! own frame decoder on the same bytes. The first byte picks the input: the rest as it is, or a
//! frame that `lz4_flex` encodes from the rest with settings taken from the byte's bits (block
//! size, linked or independent blocks, block and content checksums, content size), optionally
//! with one byte of it flipped. Whatever kafkit decodes, `lz4_flex` decodes to the same bytes
//! (or to a prefix of them where its reader stopped at a block that decodes to nothing, which it
//! reads as the end of the stream); an intact frame decodes to what was encoded; errors leave
//! the output untouched.
#![no_main]

use std::io::{Read, Write};

use kafkit_wire::compression::{decompress, Compression};
use libfuzzer_sys::fuzz_target;
use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

const LIMIT: usize = 1 << 20;

fn encode(content: &[u8], pick: u8) -> Vec<u8> {
    let info = FrameInfo::new()
        .block_size(match (pick >> 1) & 3 {
            0 => BlockSize::Max64KB,
            1 => BlockSize::Max256KB,
            2 => BlockSize::Max1MB,
            _ => BlockSize::Max4MB,
        })
        .block_mode(if pick & 8 != 0 {
            BlockMode::Linked
        } else {
            BlockMode::Independent
        })
        .block_checksums(pick & 16 != 0)
        .content_checksum(pick & 32 != 0)
        .content_size((pick & 64 != 0).then_some(content.len() as u64));
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let encoded = pick & 1 == 1;
    let flipped = encoded && pick & 128 != 0;
    let input = if encoded {
        let mut frame = encode(rest, pick);
        if flipped {
            let at = rest.first().map_or(0, |&b| usize::from(b)) * 7 % frame.len();
            frame[at] ^= rest.get(1).copied().unwrap_or(1).max(1);
        }
        frame
    } else {
        rest.to_vec()
    };
    // Room for four times the input, as the consumer reserves for a batch: blocks go first
    // into the spare capacity, then into a window of the block maximum when they do not fit.
    let mut ours = Vec::with_capacity(6 + input.len() * 4);
    ours.extend_from_slice(b"before");
    let result = decompress(Compression::Lz4, &input, LIMIT, &mut ours);
    let mut theirs = Vec::new();
    let mut reader = FrameDecoder::new(&input[..]);
    let oracle = (&mut reader)
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut theirs);
    // lz4_flex's reader takes a block that decodes to nothing for the end of the stream and
    // leaves the rest of the input unread; where it did, its output is a prefix of ours.
    let stopped_early = !reader.get_ref().is_empty();
    match result {
        Ok(()) => {
            assert!(ours.len() - 6 <= LIMIT);
            assert!(oracle.is_ok(), "lz4_flex refuses what kafkit decoded: {oracle:?}");
            if stopped_early {
                assert!(ours[6..].starts_with(&theirs), "kafkit and lz4_flex decode differently");
            } else {
                assert!(ours[6..] == theirs[..], "kafkit and lz4_flex decode differently");
            }
        }
        Err(e) => {
            assert_eq!(ours, b"before", "{e}");
            assert!(
                !(encoded && !flipped && rest.len() <= LIMIT),
                "an intact frame of {} bytes refused: {e}",
                rest.len()
            );
        }
    }
    if encoded && !flipped && rest.len() <= LIMIT {
        assert!(ours[6..] == rest[..]);
    }
});
