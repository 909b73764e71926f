//! Frame decoding: arbitrary bytes fed in arbitrary pieces never panic, never yield a frame
//! larger than the maximum, and yield the same frames however the input is split.
#![no_main]

use bytes::BytesMut;
use kafkit_wire::frame::{FrameDecoder, Next};
use libfuzzer_sys::fuzz_target;

fn frames(decoder: &FrameDecoder, chunks: &[&[u8]]) -> (Vec<bytes::Bytes>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Next::Frame(frame)) => {
                    assert!(frame.len() <= decoder.max_frame_size());
                    out.push(frame);
                }
                Ok(Next::Need(n)) => {
                    assert!(n > 0);
                    break;
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let decoder = FrameDecoder::with_max_frame_size(4096);
    let whole = frames(&decoder, &[rest]);
    let cut = usize::from(split).min(rest.len());
    let pieces = frames(&decoder, &[&rest[..cut], &rest[cut..]]);
    assert_eq!(whole, pieces);
});
