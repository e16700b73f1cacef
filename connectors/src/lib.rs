//! Connectors: Kafka in and out, ClickHouse out, and the observability endpoint.

pub mod http;
pub mod metrics;
