//! Connectors: Kafka in and out, ClickHouse out.
