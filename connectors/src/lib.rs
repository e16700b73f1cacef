//! Connectors: the Kafka source and sinks, the ClickHouse sink and its schema, dead letters
//! and the connector configuration. The wiring of these into the dataflow lives in
//! `pipeline::live`.

pub mod clickhouse;
pub mod config;
pub mod dead_letter;
pub mod kafka;
