//! Connects with client properties given as `key=value` arguments and prints the cluster's
//! brokers: a quick check of TLS and SASL settings against a real cluster.
//!
//! ```text
//! cargo run -p kafkit --example metadata -- bootstrap.servers=127.0.0.1:9093 \
//!     security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 sasl.username=alice \
//!     sasl.password=alice-secret ssl.ca.location=/path/to/ca.pem
//! ```

use std::time::Duration;

use kafkit::{Admin, ProducerConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let properties = args
        .iter()
        .map(|arg| {
            arg.split_once('=')
                .ok_or(format!("expected key=value, got `{arg}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = ProducerConfig::from_properties(properties)?;
    let admin = Admin::from_client_config(config.client()).await?;
    let protocol = config.client().security().protocol;
    for broker in admin.describe_cluster().await? {
        println!(
            "broker {} at {} ({protocol})",
            broker.node_id,
            broker.address()
        );
    }
    admin.close(Duration::from_secs(5)).await;
    Ok(())
}
