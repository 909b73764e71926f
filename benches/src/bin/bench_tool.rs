//! Helpers for `benches/run-producer.sh`, so the driver needs no JVM start per topic:
//!
//!   kafkit-bench-tool payload --out F --count P --size S [--seed X]
//!       Write P payloads of S bytes, one per line (the shared payload file), and print
//!       `{"payloads":P,"size":S,"lz4_ratio":R}` (R: raw/compressed over 16 KiB chunks).
//!   kafkit-bench-tool create --bootstrap B --topic T --partitions P
//!   kafkit-bench-tool delete --bootstrap B --topic T
//!   kafkit-bench-tool count --bootstrap B --topic T
//!       Print the sum of the log end offsets of T: the records the broker holds.

#[path = "../produce_common.rs"]
mod common;

use std::collections::HashMap;
use std::io::Write;

use kafkit::admin::{Admin, NewTopic, OffsetSpec};

fn usage() -> ! {
    eprintln!(
        "usage: kafkit-bench-tool payload --out F --count P --size S [--seed X]\n\
         \x20      kafkit-bench-tool create|delete|count --bootstrap B --topic T [--partitions P]"
    );
    std::process::exit(2)
}

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("kafkit-bench-tool: {what}: {err}");
    std::process::exit(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_else(|| usage());
    let mut opts = HashMap::new();
    while let Some(flag) = argv.next() {
        let key = flag
            .strip_prefix("--")
            .unwrap_or_else(|| usage())
            .to_owned();
        opts.insert(key, argv.next().unwrap_or_else(|| usage()));
    }
    let get = |k: &str| opts.get(k).cloned().unwrap_or_else(|| usage());
    let num = |k: &str| get(k).parse::<usize>().unwrap_or_else(|_| usage());
    match command.as_str() {
        "payload" => {
            let (count, size) = (num("count"), num("size"));
            if size < 16 || count == 0 {
                fail("payload", "need --size >= 16 and --count >= 1");
            }
            let seed = opts
                .get("seed")
                .map_or(42, |s| s.parse().unwrap_or_else(|_| usage()));
            let payloads = common::generate(count, size, seed);
            let out = get("out");
            let file = std::fs::File::create(&out).unwrap_or_else(|e| fail(&out, e));
            let mut w = std::io::BufWriter::new(file);
            for p in &payloads {
                debug_assert!(!p.contains(&b'\n'));
                w.write_all(p)
                    .and_then(|()| w.write_all(b"\n"))
                    .unwrap_or_else(|e| fail(&out, e));
            }
            w.flush().unwrap_or_else(|e| fail(&out, e));
            // How well lz4 does on batch-sized runs of these records.
            let joined: Vec<u8> = payloads.iter().take(20_000).flatten().copied().collect();
            let (mut raw, mut packed) = (0usize, 0usize);
            for chunk in joined.chunks(16 * 1024) {
                let mut buf = Vec::new();
                kafkit_wire::compression::lz4::compress(chunk, &mut buf)
                    .unwrap_or_else(|e| fail("lz4", e));
                raw += chunk.len();
                packed += buf.len();
            }
            println!(
                "{{\"payloads\":{count},\"size\":{size},\"lz4_ratio\":{:.3}}}",
                raw as f64 / packed as f64
            );
        }
        "create" | "delete" | "count" => {
            let topic = get("topic");
            let admin = Admin::connect(&get("bootstrap"))
                .await
                .unwrap_or_else(|e| fail("connect", e));
            match command.as_str() {
                "create" => {
                    let partitions = i32::try_from(num("partitions")).unwrap_or_else(|_| usage());
                    admin
                        .create_topics(&[NewTopic::new(topic.clone(), partitions, 1)])
                        .await
                        .unwrap_or_else(|e| fail("create", e));
                }
                "delete" => admin
                    .delete_topics(&[topic.as_str()])
                    .await
                    .unwrap_or_else(|e| fail("delete", e)),
                _ => {
                    let info = admin
                        .describe_topics(&[topic.as_str()])
                        .await
                        .unwrap_or_else(|e| fail("describe", e));
                    let partitions: Vec<i32> = (0..info[0].partitions.len() as i32).collect();
                    let offsets = admin
                        .list_offsets(&topic, &partitions, OffsetSpec::Latest)
                        .await
                        .unwrap_or_else(|e| fail("list offsets", e));
                    println!("{}", offsets.iter().map(|o| o.offset).sum::<i64>());
                }
            }
        }
        _ => usage(),
    }
}
