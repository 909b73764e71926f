//! Test harness: finds or starts a real Kafka broker for the integration suites.
