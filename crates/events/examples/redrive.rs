//! Redrive: re-publishes the dead letters of a dead-letter topic to the topics they came from
//! (error headers stripped; key, value and the other headers byte for byte), once: the redrive
//! group's committed offsets remember what was done.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 \
//!   cargo run -p kafkit-events --example redrive -- orders.dlq [redrive-group]
//! ```
//!
//! Configuration comes from the environment (`EventsConfig::from_env`).

use std::time::Duration;

use kafkit_events::config::EventsConfig;
use kafkit_events::consumer::{redrive, RedriveOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let Some(dead_letter_topic) = args.next() else {
        return Err("usage: redrive <dead-letter-topic> [group]".into());
    };
    let config = EventsConfig::from_env()?;
    let mut options = RedriveOptions::default();
    options.group_id = args.next();
    options.timeout = Duration::from_secs(120);
    let report = redrive(&config, &dead_letter_topic, options).await?;
    println!(
        "{dead_letter_topic}: {} dead letters re-published, {} skipped (not dead letters){}",
        report.redriven,
        report.skipped,
        if report.complete {
            ""
        } else {
            "; stopped before the end (timeout): run again to go on"
        }
    );
    Ok(())
}
