//! KIP-390 compression levels against a real broker: for each codec and a spread of its levels
//! (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`), every record
//! is acknowledged and read back exactly once, in order, by kafkit and by librdkafka (`kcat`).

use std::process::Stdio;
use std::time::Duration;

use kafkit::config::{Compression, ProducerConfig};
use kafkit::producer::{Producer, ProducerRecord};
use kafkit_tests::verify::{read_back, value_of, verify, Sent};
use kafkit_tests::{fill, kafka};

const PARTITIONS: i32 = 2;
const RECORDS: u64 = 400;

/// Reads every value of `topic` with kcat (librdkafka), to the end of each partition.
async fn kcat_values(topic: &str) -> Vec<String> {
    let child = tokio::process::Command::new("kcat")
        .args(["-C", "-b", &kafka().bootstrap, "-t", topic])
        .args(["-o", "beginning", "-e", "-q", "-f", "%s\\n"])
        .args(["-X", "check.crcs=true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kcat starts");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kcat finishes within 60 s")
        .expect("kcat runs");
    assert!(
        output.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 values")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_codec_level_is_read_back_by_kafkit_and_kcat() {
    let cases = [
        (Compression::Gzip, -1),
        (Compression::Gzip, 1),
        (Compression::Gzip, 9),
        (Compression::Lz4, 9),
        (Compression::Zstd, -131_072),
        (Compression::Zstd, -5),
        (Compression::Zstd, 1),
        (Compression::Zstd, 3),
        (Compression::Zstd, 12),
        (Compression::Zstd, 22),
    ];
    for (codec, level) in cases {
        let what = format!("{}-{level}", codec.name());
        let topic = fill::topic(&kafka().bootstrap, "producer-levels", PARTITIONS).await;
        let config = ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .compression(codec)
            .compression_gzip_level(if codec == Compression::Gzip {
                level
            } else {
                -1
            })
            .compression_lz4_level(if codec == Compression::Lz4 { level } else { 9 })
            .compression_zstd_level(if codec == Compression::Zstd { level } else { 3 })
            .linger(Duration::from_millis(20))
            .build()
            .unwrap();
        assert_eq!(config.compression_level(), Some(level), "{what}");
        let producer = Producer::new(config).await.unwrap();
        let mut deliveries = Vec::new();
        for id in 0..RECORDS {
            let record = ProducerRecord::new(&topic)
                .partition((id % PARTITIONS as u64) as i32)
                .value(value_of(id));
            deliveries.push((id, producer.send(record).await.unwrap()));
        }
        producer.flush().await.unwrap();
        let mut sent = Vec::new();
        for (id, delivery) in deliveries {
            let md = delivery.await.unwrap_or_else(|e| panic!("{what}: {e}"));
            sent.push(Sent {
                id,
                partition: md.partition,
                offset: Some(md.offset),
            });
        }
        producer.close(Duration::from_secs(30)).await.unwrap();

        let log = read_back(
            &kafka().bootstrap,
            &topic,
            PARTITIONS,
            &sent,
            Duration::from_secs(60),
        )
        .await;
        let verdict = verify(&sent, &log);
        assert!(verdict.is_exact(), "{what}: {verdict:?}");

        let mut by_kcat: Vec<u64> = kcat_values(&topic)
            .await
            .iter()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{what}: kcat read {v:?}"))
            })
            .collect();
        by_kcat.sort_unstable();
        assert_eq!(by_kcat, (0..RECORDS).collect::<Vec<_>>(), "{what}: kcat");
    }
}

/// LZ4 has one compressor in kafkit: a level other than the default would be silently the
/// same, so the producer refuses it naming the key (the builder accepts the Java range).
#[tokio::test]
async fn an_lz4_level_other_than_the_default_is_refused_naming_it() {
    for level in [1, 17] {
        let config = ProducerConfig::builder()
            .bootstrap_servers([kafka().bootstrap.clone()])
            .compression(Compression::Lz4)
            .compression_lz4_level(level)
            .build()
            .unwrap();
        let err = match Producer::new(config).await {
            Ok(_) => panic!("lz4 level {level} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("compression.lz4.level"), "{err}");
    }
}
