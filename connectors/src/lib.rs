//! Connectors: the Kafka source and sinks, the ClickHouse sink and its schema, dead letters,
//! the connector configuration, and observability (Prometheus metrics and the
//! `/metrics`, `/livez`, `/readyz` endpoint). The wiring of these into the dataflow lives in
//! `pipeline::live`.

pub mod clickhouse;
pub mod config;
pub mod dead_letter;
pub mod http;
pub mod kafka;
pub mod metrics;
