//! Settings honesty: every property `from_properties` accepts either changes what the client
//! does, or is accepted for compatibility with Java applications and documented as such (or
//! refused where a value would silently not do what it says). The tests walk every key the
//! config code knows (its key constants and what `to_properties` writes) against this table,
//! so a new key cannot be added without saying which it is.

/// What an accepted property does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The value changes the client's behaviour as the Java client documents it.
    Applied,
    /// Accepted so that Java properties files load; the reason says why nothing is lost.
    Compatibility(&'static str),
    /// Some values are refused with a typed error naming the key (the reason says which).
    RefusedUnlessDefault(&'static str),
}

use Effect::{Applied, Compatibility, RefusedUnlessDefault};

/// Shared by every client kind (`ClientConfig`, security included).
pub(crate) const COMMON: &[(&str, Effect)] = &[
    ("bootstrap.servers", Applied),
    ("client.id", Applied),
    ("request.timeout.ms", Applied),
    ("retry.backoff.ms", Applied),
    ("retry.backoff.max.ms", Applied),
    ("reconnect.backoff.ms", Applied),
    ("reconnect.backoff.max.ms", Applied),
    ("metadata.max.age.ms", Applied),
    ("connections.max.idle.ms", Applied),
    ("socket.connection.setup.timeout.ms", Applied),
    ("socket.connection.setup.timeout.max.ms", Applied),
    // Set on each socket before it connects (io/connection.rs `connect_tcp`).
    ("send.buffer.bytes", Applied),
    ("receive.buffer.bytes", Applied),
    // use_all_dns_ips only (io/dns.rs: every address, resolved on every attempt); the other
    // values are refused naming it (common.rs `check_dns_lookup`).
    ("client.dns.lookup", Applied),
    // KIP-909: an unresolvable bootstrap list is looked up again with the reconnect backoff
    // for this long (io/cluster.rs `bootstrap`, state/dns.rs `BootstrapResolution`).
    ("bootstrap.resolve.timeout.ms", Applied),
    // KIP-899/1102: which addresses connecting tries (io/cluster.rs `any_connection`,
    // state/rebootstrap.rs `MetadataRecovery`); REBOOTSTRAP_REQUIRED is acted on too.
    ("metadata.recovery.strategy", Applied),
    ("metadata.recovery.rebootstrap.trigger.ms", Applied),
    ("security.protocol", Applied),
    ("sasl.mechanism", Applied),
    ("sasl.mechanisms", Applied),
    ("sasl.username", Applied),
    ("sasl.password", Applied),
    ("sasl.jaas.config", Applied),
    ("ssl.ca.location", Applied),
    ("ssl.ca.pem", Applied),
    ("ssl.certificate.location", Applied),
    ("ssl.key.location", Applied),
    // Decrypts an `ENCRYPTED PRIVATE KEY` ssl.key.location (io/tls.rs `private_key`).
    ("ssl.key.password", Applied),
    (
        "ssl.keystore.type",
        RefusedUnlessDefault(
            "JKS and PKCS#12 stores are not read: every value is refused naming the key (PEM \
             files through ssl.certificate.location and ssl.key.location instead)",
        ),
    ),
    (
        "ssl.keystore.location",
        RefusedUnlessDefault("no keystore is read: any value is refused naming the key"),
    ),
    (
        "ssl.truststore.type",
        RefusedUnlessDefault(
            "JKS and PKCS#12 stores are not read: every value is refused naming the key (a PEM \
             file through ssl.ca.location instead)",
        ),
    ),
    (
        "ssl.truststore.location",
        RefusedUnlessDefault("no truststore is read: any value is refused naming the key"),
    ),
    ("ssl.endpoint.identification.algorithm", Applied),
    ("enable.ssl.certificate.verification", Applied),
];

/// `ProducerConfig` only.
pub(crate) const PRODUCER: &[(&str, Effect)] = &[
    ("acks", Applied),
    ("linger.ms", Applied),
    ("batch.size", Applied),
    ("compression.type", Applied),
    ("enable.idempotence", Applied),
    ("max.in.flight.requests.per.connection", Applied),
    ("retries", Applied),
    ("delivery.timeout.ms", Applied),
    ("buffer.memory", Applied),
    ("max.block.ms", Applied),
    ("max.request.size", Applied),
    (
        "metadata.max.idle.ms",
        Compatibility(
            "topics produced to are never forgotten: their metadata stays in the refresh, which \
             costs a little metadata traffic and loses nothing",
        ),
    ),
    ("partitioner.ignore.keys", Applied),
    ("partitioner.adaptive.partitioning.enable", Applied),
    ("partitioner.availability.timeout.ms", Applied),
    ("compression.gzip.level", Applied),
    (
        "compression.lz4.level",
        RefusedUnlessDefault(
            "the pure-Rust LZ4 encoder has one compressor: Producer::new refuses any value but 9 \
             naming it",
        ),
    ),
    ("compression.zstd.level", Applied),
    ("transactional.id", Applied),
    ("transaction.timeout.ms", Applied),
];

/// `ConsumerConfig` only.
pub(crate) const CONSUMER: &[(&str, Effect)] = &[
    ("group.id", Applied),
    ("group.instance.id", Applied),
    ("group.protocol", Applied),
    ("group.remote.assignor", Applied),
    ("client.rack", Applied),
    ("auto.offset.reset", Applied),
    ("enable.auto.commit", Applied),
    ("auto.commit.interval.ms", Applied),
    ("session.timeout.ms", Applied),
    ("heartbeat.interval.ms", Applied),
    ("max.poll.interval.ms", Applied),
    ("max.poll.records", Applied),
    ("partition.assignment.strategy", Applied),
    ("isolation.level", Applied),
    ("fetch.min.bytes", Applied),
    ("fetch.max.wait.ms", Applied),
    ("fetch.max.bytes", Applied),
    ("max.partition.fetch.bytes", Applied),
    ("check.crcs", Applied),
    ("kafkit.prefetch.max.bytes", Applied),
    ("allow.auto.create.topics", Applied),
    ("default.api.timeout.ms", Applied),
];

/// `AdminConfig` only.
pub(crate) const ADMIN: &[(&str, Effect)] = &[("default.api.timeout.ms", Applied)];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminConfig, ConfigError, ConsumerConfig, ProducerConfig};

    fn effect(table: &[&[(&str, Effect)]], key: &str) -> Option<Effect> {
        table
            .iter()
            .flat_map(|t| t.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
    }

    /// Every string constant that looks like a property name in the config sources.
    fn keys_in_sources() -> Vec<String> {
        let sources = [
            include_str!("admin.rs"),
            include_str!("common.rs"),
            include_str!("consumer.rs"),
            include_str!("consumer/options.rs"),
            include_str!("producer.rs"),
            include_str!("security.rs"),
            include_str!("jaas.rs"),
        ];
        let mut keys = Vec::new();
        for source in sources {
            for (i, _) in source.match_indices(": &str =") {
                let rest = source[i + ": &str =".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let Some(end) = rest.find('"') else { continue };
                let key = &rest[..end];
                // Property names are dotted lower case; JAAS module class names are not keys.
                if key.contains('.') && !key.starts_with("org.") && key == key.to_lowercase() {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn every_key_the_config_code_names_is_classified() {
        let keys = keys_in_sources();
        assert!(keys.len() > 50, "the scan found too few keys: {keys:?}");
        for key in keys {
            assert!(
                effect(&[COMMON, PRODUCER, CONSUMER, ADMIN], &key).is_some(),
                "`{key}` is accepted but not classified in config/settings.rs"
            );
        }
    }

    #[test]
    fn every_key_written_by_to_properties_is_classified() {
        let producer = ProducerConfig::from_properties([("bootstrap.servers", "localhost:9092")])
            .unwrap()
            .to_properties();
        for (key, _) in producer {
            assert!(
                effect(&[COMMON, PRODUCER], key).is_some(),
                "producer `{key}`"
            );
        }
        let consumer = ConsumerConfig::from_properties([
            ("bootstrap.servers", "localhost:9092"),
            ("group.id", "g"),
            ("group.instance.id", "i"),
            ("client.rack", "r"),
        ])
        .unwrap()
        .to_properties();
        for (key, _) in consumer {
            assert!(
                effect(&[COMMON, CONSUMER], key).is_some(),
                "consumer `{key}`"
            );
        }
        let admin = AdminConfig::from_properties([("bootstrap.servers", "localhost:9092")])
            .unwrap()
            .to_properties();
        for (key, _) in admin {
            assert!(effect(&[COMMON, ADMIN], key).is_some(), "admin `{key}`");
        }
    }

    /// `Ok` or an error about the value: the key itself is known.
    fn known(result: Result<(), ConfigError>, key: &str) {
        if let Err(ConfigError::UnknownKey { key: unknown, .. }) = &result {
            panic!("`{key}` is classified but refused as unknown (`{unknown}`)");
        }
    }

    #[test]
    fn every_classified_key_is_accepted_by_its_client_kind() {
        for (key, _) in COMMON.iter().chain(PRODUCER) {
            let r = ProducerConfig::from_properties([
                ("bootstrap.servers", "localhost:9092"),
                (key, "1"),
            ]);
            known(r.map(drop), key);
        }
        for (key, _) in COMMON.iter().chain(CONSUMER) {
            let r = ConsumerConfig::from_properties([
                ("bootstrap.servers", "localhost:9092"),
                (key, "1"),
            ]);
            known(r.map(drop), key);
        }
        for (key, _) in COMMON.iter().chain(ADMIN) {
            let r =
                AdminConfig::from_properties([("bootstrap.servers", "localhost:9092"), (key, "1")]);
            known(r.map(drop), key);
        }
        // And a key in neither table is refused.
        let err = ProducerConfig::from_properties([
            ("bootstrap.servers", "localhost:9092"),
            ("no.such.setting", "1"),
        ])
        .unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err:?}");
    }

    #[test]
    fn a_partitioner_availability_timeout_is_accepted() {
        let config = ProducerConfig::from_properties([
            ("bootstrap.servers", "127.0.0.1:1"),
            ("partitioner.availability.timeout.ms", "250"),
        ])
        .unwrap();
        assert_eq!(config.refuse_unbuilt(), Ok(()));
    }

    #[test]
    fn compatibility_entries_say_why() {
        for (key, e) in COMMON.iter().chain(PRODUCER).chain(CONSUMER).chain(ADMIN) {
            if let Compatibility(why) | RefusedUnlessDefault(why) = e {
                assert!(why.len() > 20, "`{key}` needs a reason");
            }
        }
    }
}
