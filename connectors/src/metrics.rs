//! Prometheus metrics (`outputs.md`, "Metrics"): every series the program exports, registered
//! on a registry the caller passes in (never the global one).
//!
//! Naming follows Prometheus conventions: prefix `steward_`, base units (seconds, records,
//! rows), `_total` on counters. No label names an enterprise: label values come from
//! bounded sets (feed codes, reject reasons, colours, directions, rule codes, table names,
//! Kafka error codes, services). Series with known label values are created at zero by
//! [`Metrics::new`] and [`Metrics::describe`] so that dashboards and alert rules find them
//! in the first scrape.

use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use rules::catalogue::Catalogue;
use rules::event::Feed;
use rules::monitor::{Alert, AlertState, ColourChange};
use rules::reject::Reason;
use rules::score::Colour;

use crate::kafka::KafkaFailure;

/// The `direction` label values of colour changes (and `colour_history.direction`).
pub const DIRECTIONS: [&str; 3] = ["worsened", "improved", "first"];

/// The ClickHouse tables the sink writes; the `table` label values.
pub const TABLES: [&str; 10] = [
    "enterprise_state",
    "indicator_values",
    "colour_history",
    "alerts",
    "records",
    "record_status",
    "dead_letters",
    "inspection_plans",
    "inspection_campaigns",
    "commitment_checks",
];

/// Alert rules that are not trigger codes.
pub const EXTRA_ALERT_RULES: [&str; 2] = ["COLOUR_WORSENED", "SCORE_DROP"];

/// The outcomes of writing a state checkpoint (`steward_state_checkpoints_total`).
pub const CHECKPOINT_OUTCOMES: [&str; 2] = ["written", "failed"];

/// The long-lived consumers that a stall watch restarts
/// (`steward_kafka_consumer_restarts_total`, [`crate::kafka::StallWatch`]).
pub const WATCHED_CONSUMERS: [&str; 2] = ["log", "feed"];

/// Kafka error codes (`error_code` label) created at zero, so that dashboards find the
/// series before the first error: the transport and broker failures an operator watches,
/// `client` (errors without a librdkafka code), and steward's own failures of a call
/// (`timed_out`: a consumer not read far enough in time; `unanswered`: a call librdkafka did
/// not return from, whose producer was abandoned, D79). Other codes appear when they happen.
pub const KAFKA_ERROR_CODES: [&str; 8] = [
    "client",
    "BrokerTransportFailure",
    "AllBrokersDown",
    "MessageTimedOut",
    "UnknownTopicOrPartition",
    "Fatal",
    "timed_out",
    "unanswered",
];

/// The `feed` label for a record whose feed is not known (e.g. read from an unknown topic).
pub const UNKNOWN_FEED: &str = "unknown";

/// Ingest-to-colour-change latency buckets in seconds, 1 s to 2 h: a change is published
/// once the watermark passes its second, about the allowed lateness (10 minutes by default)
/// after ingest, so the buckets reach well beyond it (the latency alert reads the 95th
/// percentile against 30 minutes).
const LATENCY_BUCKETS: [f64; 16] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 450.0, 600.0, 750.0, 900.0, 1200.0, 1800.0, 2700.0,
    3600.0, 7200.0,
];

/// ClickHouse write buckets in seconds, 1 ms to 30 s.
const WRITE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// A dependency whose health `/readyz` reports and `steward_service_up` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// The Kafka brokers.
    Kafka,
    /// The ClickHouse server.
    ClickHouse,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 2] = [Service::Kafka, Service::ClickHouse];

    /// The `service` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::ClickHouse => "clickhouse",
        }
    }
}

/// The direction of a colour change, as `colour_history.direction` has it
/// (`pipeline::rows::direction`): `first` for an enterprise's first colour; `worsened` when
/// the new colour comes later in blue < green < yellow < red < none (`Colour`'s order, so a
/// change into `none`, scoring stopped, counts as worsened); otherwise `improved`.
pub fn direction(from: Option<Colour>, to: Colour) -> &'static str {
    match from {
        None => "first",
        Some(f) if to > f => "worsened",
        Some(_) => "improved",
    }
}

/// The `error_code` label of a Kafka error: librdkafka's error code name (a bounded enum),
/// or `client` for errors that carry none (configuration, client creation, …).
pub fn kafka_error_code(err: &rdkafka::error::KafkaError) -> String {
    err.rdkafka_error_code()
        .map_or_else(|| "client".to_owned(), |c| format!("{c:?}"))
}

/// Every metric the program exports. Cloning is cheap and shares the series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `steward_records_read_total{feed}`: raw input records read, before decoding.
    pub records_read: IntCounterVec,
    /// `steward_records_applied_total{feed}`: records applied when admitted to the log. A
    /// record applied and later found a duplicate or dead-lettered is counted again where
    /// it ended and in `steward_records_withdrawn_total`, so that read = applied −
    /// withdrawn + duplicate + rejected at every scrape (D52).
    pub records_applied: IntCounterVec,
    /// `steward_records_withdrawn_total{feed,to}`: records counted as applied that later
    /// lost an equal-version tie (`to="duplicate"`) or were dead-lettered by the lifecycle
    /// (`to="rejected"`).
    pub records_withdrawn: IntCounterVec,
    /// `steward_records_duplicate_total{feed}`: duplicate deliveries, and equal versions
    /// that lost the tie to a smaller SHA-256.
    pub records_duplicate: IntCounterVec,
    /// `steward_records_rejected_total{feed,reason}`: records dead-lettered, by reject
    /// reason code (`rules::reject::Reason`).
    pub records_rejected: IntCounterVec,
    /// `steward_consumer_lag_records{topic,partition}`: records between the consumer's
    /// position and the partition's high watermark. File mode reads each feed's file as
    /// partition 0 of the feed's default topic, so its lag is 0 once read.
    pub consumer_lag: IntGaugeVec,
    /// `steward_colour_change_latency_seconds`: from a record's ingest to the colour change
    /// it causes being published.
    pub colour_change_latency: Histogram,
    /// `steward_enterprises{colour}`: enterprises by current published colour.
    pub enterprises: IntGaugeVec,
    /// `steward_colour_changes_total{direction,to}`: published colour changes.
    pub colour_changes: IntCounterVec,
    /// `steward_alerts_total{rule,state}`: alert state changes (`firing` / `resolved`).
    pub alerts: IntCounterVec,
    /// `steward_alerts_firing{rule}`: enterprises whose alert of this rule is firing now
    /// (rules that resolve; `COLOUR_WORSENED` is an event and stays at 0).
    pub alerts_firing: IntGaugeVec,
    /// `steward_dead_letters_total{reason}`: dead letters written (decoder and lifecycle).
    pub dead_letters: IntCounterVec,
    /// `steward_clickhouse_write_duration_seconds{table}`: duration of one insert.
    pub clickhouse_write_duration: HistogramVec,
    /// `steward_clickhouse_write_errors_total{table}`: failed inserts (each attempt).
    pub clickhouse_write_errors: IntCounterVec,
    /// `steward_clickhouse_rows_written_total{table}`: rows inserted.
    pub clickhouse_rows_written: IntCounterVec,
    /// `steward_kafka_errors_total{error_code}`: Kafka client errors by librdkafka code.
    pub kafka_errors: IntCounterVec,
    /// `steward_kafka_consumer_restarts_total{consumer}`: consumers replaced because they
    /// stopped fetching while data they had not read existed ([`WATCHED_CONSUMERS`]).
    pub consumer_restarts: IntCounterVec,
    /// `steward_service_up{service}`: 1 while the dependency is reachable, else 0 (also
    /// when it is not used, as in file mode).
    pub service_up: IntGaugeVec,
    /// `steward_service_retries_total{service}`: retries of a failed call to a dependency.
    pub service_retries: IntCounterVec,
    /// `steward_checkpoint_age_seconds`: time since the last committed checkpoint.
    pub checkpoint_age: Gauge,
    /// `steward_state_checkpoints_total{outcome}`: state checkpoints (D68) `written`, or
    /// `failed` to be written ([`CHECKPOINT_OUTCOMES`]).
    pub state_checkpoints: IntCounterVec,
    /// `steward_watermark_timestamp_seconds`: the dataflow's logical time (Unix seconds).
    pub watermark: IntGauge,
    /// `steward_sink_backlog_rows`: rows waiting to be written to ClickHouse.
    pub sink_backlog: IntGauge,
    /// `steward_build_info{version,rules_version}`: always 1; see [`Metrics::describe`].
    pub build_info: IntGaugeVec,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    /// Creates every metric on `registry` and the series with known label values at zero.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let r = registry;
        let m = Metrics {
            records_read: counter(
                r,
                "steward_records_read_total",
                "Raw input records read.",
                &["feed"],
            )?,
            records_applied: counter(
                r,
                "steward_records_applied_total",
                "Accepted input records in effect in the dataflow.",
                &["feed"],
            )?,
            records_withdrawn: counter(
                r,
                "steward_records_withdrawn_total",
                "Records counted as applied that later became a duplicate or were \
                 dead-lettered.",
                &["feed", "to"],
            )?,
            records_duplicate: counter(
                r,
                "steward_records_duplicate_total",
                "Duplicate input deliveries, and equal versions that lost the tie.",
                &["feed"],
            )?,
            records_rejected: counter(
                r,
                "steward_records_rejected_total",
                "Input records rejected to the dead letters, by reason.",
                &["feed", "reason"],
            )?,
            consumer_lag: gauge(
                r,
                "steward_consumer_lag_records",
                "Records between the consumer position and the high watermark.",
                &["topic", "partition"],
            )?,
            colour_change_latency: {
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "steward_colour_change_latency_seconds",
                        "From a record's ingest to the colour change it causes being published.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )?;
                r.register(Box::new(h.clone()))?;
                h
            },
            enterprises: gauge(
                r,
                "steward_enterprises",
                "Enterprises by current published colour.",
                &["colour"],
            )?,
            colour_changes: counter(
                r,
                "steward_colour_changes_total",
                "Published colour changes by direction and new colour.",
                &["direction", "to"],
            )?,
            alerts: counter(
                r,
                "steward_alerts_total",
                "Alert state changes by rule and state.",
                &["rule", "state"],
            )?,
            alerts_firing: gauge(
                r,
                "steward_alerts_firing",
                "Enterprises whose alert of the rule is firing.",
                &["rule"],
            )?,
            dead_letters: counter(
                r,
                "steward_dead_letters_total",
                "Dead letters written, by reason.",
                &["reason"],
            )?,
            clickhouse_write_duration: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "steward_clickhouse_write_duration_seconds",
                        "Duration of one ClickHouse insert.",
                    )
                    .buckets(WRITE_BUCKETS.to_vec()),
                    &["table"],
                )?;
                r.register(Box::new(h.clone()))?;
                h
            },
            clickhouse_write_errors: counter(
                r,
                "steward_clickhouse_write_errors_total",
                "Failed ClickHouse inserts.",
                &["table"],
            )?,
            clickhouse_rows_written: counter(
                r,
                "steward_clickhouse_rows_written_total",
                "Rows inserted into ClickHouse.",
                &["table"],
            )?,
            kafka_errors: counter(
                r,
                "steward_kafka_errors_total",
                "Kafka client errors by librdkafka error code.",
                &["error_code"],
            )?,
            consumer_restarts: counter(
                r,
                "steward_kafka_consumer_restarts_total",
                "Kafka consumers replaced after they stopped fetching with data left to read.",
                &["consumer"],
            )?,
            service_up: gauge(
                r,
                "steward_service_up",
                "1 while the dependency is reachable.",
                &["service"],
            )?,
            service_retries: counter(
                r,
                "steward_service_retries_total",
                "Retries of failed calls to a dependency.",
                &["service"],
            )?,
            checkpoint_age: {
                let g = Gauge::new(
                    "steward_checkpoint_age_seconds",
                    "Seconds since the last committed checkpoint.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            state_checkpoints: counter(
                r,
                "steward_state_checkpoints_total",
                "State checkpoints written or failed, by outcome.",
                &["outcome"],
            )?,
            watermark: {
                let g = IntGauge::new(
                    "steward_watermark_timestamp_seconds",
                    "The dataflow's logical time as Unix seconds.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            sink_backlog: {
                let g = IntGauge::new(
                    "steward_sink_backlog_rows",
                    "Rows waiting to be written to ClickHouse.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            build_info: gauge(
                r,
                "steward_build_info",
                "Always 1; the labels name the build and the catalogue.",
                &["version", "rules_version"],
            )?,
        };
        let feeds = Feed::NAMES.iter().copied().chain([UNKNOWN_FEED]);
        for feed in feeds {
            m.records_read.with_label_values(&[feed]);
            m.records_applied.with_label_values(&[feed]);
            m.records_duplicate.with_label_values(&[feed]);
            for to in ["duplicate", "rejected"] {
                m.records_withdrawn.with_label_values(&[feed, to]);
            }
            for reason in Reason::NAMES {
                m.records_rejected.with_label_values(&[feed, reason]);
            }
        }
        for reason in Reason::NAMES {
            m.dead_letters.with_label_values(&[reason]);
        }
        for c in Colour::ALL {
            m.enterprises.with_label_values(&[c.as_str()]);
            for d in DIRECTIONS {
                m.colour_changes.with_label_values(&[d, c.as_str()]);
            }
        }
        for t in TABLES {
            m.clickhouse_write_duration.with_label_values(&[t]);
            m.clickhouse_write_errors.with_label_values(&[t]);
            m.clickhouse_rows_written.with_label_values(&[t]);
        }
        for s in Service::ALL {
            m.service_up.with_label_values(&[s.as_str()]);
            m.service_retries.with_label_values(&[s.as_str()]);
        }
        for code in KAFKA_ERROR_CODES {
            m.kafka_errors.with_label_values(&[code]);
        }
        for c in WATCHED_CONSUMERS {
            m.consumer_restarts.with_label_values(&[c]);
        }
        for outcome in CHECKPOINT_OUTCOMES {
            m.state_checkpoints.with_label_values(&[outcome]);
        }
        // The process's own CPU, memory, open files and start time (`process_*`), as every
        // exporter has them: an operator sees a leak or a saturated core beside the
        // pipeline's figures.
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(m)
    }

    /// Sets `steward_build_info` for this build and `cat`, and creates the alert series of
    /// every rule the catalogue can raise (its trigger codes, `COLOUR_WORSENED`,
    /// `SCORE_DROP`) at zero.
    pub fn describe(&self, cat: &Catalogue) {
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), &cat.version])
            .set(1);
        let rules = cat
            .triggers
            .iter()
            .map(|t| t.code.as_str())
            .chain(EXTRA_ALERT_RULES);
        for rule in rules {
            self.alerts_firing.with_label_values(&[rule]);
            for state in ["firing", "resolved"] {
                self.alerts.with_label_values(&[rule, state]);
            }
        }
    }

    /// Counts a published colour change.
    pub fn colour_change(&self, c: &ColourChange) {
        self.colour_changes
            .with_label_values(&[direction(c.from, c.to), c.to.as_str()])
            .inc();
    }

    /// Counts an alert state change.
    pub fn alert(&self, a: &Alert) {
        let state = match a.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        self.alerts.with_label_values(&[&a.rule, state]).inc();
    }

    /// Counts a rejected input record (and its dead letter).
    pub fn rejected(&self, feed: Option<Feed>, reason: Reason) {
        let feed = feed.map_or(UNKNOWN_FEED, Feed::as_str);
        self.records_rejected
            .with_label_values(&[feed, reason.as_str()])
            .inc();
        self.dead_letters
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Counts a record of `feed` that was counted as applied and has become a duplicate
    /// (`None`: it lost an equal-version tie) or was dead-lettered by the lifecycle
    /// (`Some(reason)`): where it ended, and as withdrawn from applied (D52).
    pub fn withdrawn(&self, feed: Feed, rejected: Option<Reason>) {
        let to = match rejected {
            None => {
                self.records_duplicate
                    .with_label_values(&[feed.as_str()])
                    .inc();
                "duplicate"
            }
            Some(reason) => {
                self.rejected(Some(feed), reason);
                "rejected"
            }
        };
        self.records_withdrawn
            .with_label_values(&[feed.as_str(), to])
            .inc();
    }

    /// Logs a Kafka error and counts it by error code.
    pub fn kafka_error(&self, context: &str, err: &rdkafka::error::KafkaError) {
        let code = kafka_error_code(err);
        tracing::warn!(error_code = %code, error = %err, "kafka: {context}");
        self.kafka_errors.with_label_values(&[&code]).inc();
    }

    /// Logs and counts a failed Kafka call: a client's or a fenced producer's error by its
    /// librdkafka code, steward's own failures (a timeout, an abandoned call, no thread, a
    /// refused configuration) by theirs ([`KafkaFailure::error_code`]).
    pub fn kafka_failure(&self, failure: &KafkaFailure) {
        match failure {
            KafkaFailure::Client { context, source } | KafkaFailure::Fatal { context, source } => {
                self.kafka_error(context, source);
            }
            other => {
                let code = other.error_code();
                tracing::warn!(error_code = code, error = %other, "kafka call failed");
                self.kafka_errors.with_label_values(&[code]).inc();
            }
        }
    }

    /// Logs and counts the restart of `consumer` (one of [`WATCHED_CONSUMERS`]), stalled
    /// for `idle` with data left to read, from `offset`.
    pub fn consumer_stalled(&self, consumer: &str, idle: Duration, offset: i64) {
        tracing::warn!(
            consumer,
            ?idle,
            offset,
            "kafka: the consumer stopped fetching with data left to read; replacing it"
        );
        self.consumer_restarts.with_label_values(&[consumer]).inc();
    }

    /// Logs a failed ClickHouse insert into `table` and counts it.
    pub fn clickhouse_error(&self, table: &str, err: &dyn std::error::Error) {
        tracing::warn!(table, error = %err, "clickhouse: insert failed");
        self.clickhouse_write_errors
            .with_label_values(&[table])
            .inc();
    }

    /// Logs and counts a retry of a call to `service`.
    pub fn retry(&self, service: Service, attempt: u32) {
        tracing::info!(service = service.as_str(), attempt, "retrying");
        self.service_retries
            .with_label_values(&[service.as_str()])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn scrape(r: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&r.gather(), &mut buf)
            .expect("encode");
        String::from_utf8(buf).expect("utf-8")
    }

    #[test]
    fn known_series_are_exported_at_zero() {
        let r = Registry::new();
        let m = Metrics::new(&r).expect("metrics");
        m.describe(&Catalogue::embedded());
        let text = scrape(&r);
        for line in [
            "steward_records_read_total{feed=\"PEN\"} 0",
            "steward_records_rejected_total{feed=\"unknown\",reason=\"invalid_json\"} 0",
            "steward_enterprises{colour=\"none\"} 0",
            "steward_colour_changes_total{direction=\"worsened\",to=\"red\"} 0",
            "steward_alerts_firing{rule=\"R1\"} 0",
            "steward_alerts_total{rule=\"COLOUR_WORSENED\",state=\"firing\"} 0",
            "steward_clickhouse_write_errors_total{table=\"colour_history\"} 0",
            "steward_colour_change_latency_seconds_count 0",
            "steward_watermark_timestamp_seconds 0",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
        assert!(text.contains("steward_build_info{rules_version=\""));
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let r = Registry::new();
        Metrics::new(&r).expect("metrics");
        let families = r.gather();
        // Steward's own, and the process collector's standard `process_*` family.
        assert!(families
            .iter()
            .any(|f| f.name() == "process_cpu_seconds_total"));
        for family in families {
            let name = family.name();
            assert!(
                name.starts_with("steward_") || name.starts_with("process_"),
                "{name}"
            );
            let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(counter, name.ends_with("_total"), "{name}");
            for m in family.get_metric() {
                for l in m.get_label() {
                    assert!(!["uscc", "enterprise"].contains(&l.name()), "{name}");
                }
            }
        }
    }

    #[test]
    fn a_second_registration_on_the_same_registry_fails() {
        let r = Registry::new();
        Metrics::new(&r).expect("first");
        assert!(Metrics::new(&r).is_err());
        Metrics::new(&Registry::new()).expect("another registry");
    }

    #[test]
    fn directions_follow_the_colour_order() {
        assert_eq!(direction(None, Colour::Red), "first");
        assert_eq!(direction(Some(Colour::Green), Colour::Red), "worsened");
        assert_eq!(direction(Some(Colour::Red), Colour::Yellow), "improved");
        assert_eq!(direction(Some(Colour::Yellow), Colour::None), "worsened");
        assert_eq!(direction(Some(Colour::None), Colour::Red), "improved");
    }

    #[test]
    fn events_count_once() {
        let r = Registry::new();
        let m = Metrics::new(&r).expect("metrics");
        m.rejected(Some(Feed::Tax), Reason::BadUscc);
        m.rejected(None, Reason::InvalidJson);
        assert_eq!(
            m.records_rejected
                .with_label_values(&["TAX", "bad_uscc"])
                .get(),
            1
        );
        assert_eq!(m.dead_letters.with_label_values(&["invalid_json"]).get(), 1);
        m.withdrawn(Feed::Pen, Some(Reason::UnknownTarget));
        m.withdrawn(Feed::Pen, None);
        let withdrawn = |to: &str| m.records_withdrawn.with_label_values(&["PEN", to]).get();
        assert_eq!((withdrawn("duplicate"), withdrawn("rejected")), (1, 1));
        assert_eq!(m.records_duplicate.with_label_values(&["PEN"]).get(), 1);
        assert_eq!(
            m.records_rejected
                .with_label_values(&["PEN", "unknown_target"])
                .get(),
            1
        );
        m.kafka_error(
            "poll",
            &rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            ),
        );
        assert!(scrape(&r)
            .contains("steward_kafka_errors_total{error_code=\"BrokerTransportFailure\"} 1"));
        // An abandoned call is counted under its own code, which exists at zero before.
        assert!(scrape(&r).contains("steward_kafka_errors_total{error_code=\"unanswered\"} 0"));
        m.kafka_failure(&KafkaFailure::Unanswered {
            context: "send_offsets",
            timeout: Duration::from_secs(35),
        });
        m.kafka_failure(&KafkaFailure::Fatal {
            context: "commit",
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::Fenced,
            ),
        });
        let text = scrape(&r);
        assert!(text.contains("steward_kafka_errors_total{error_code=\"unanswered\"} 1"));
        assert!(text.contains("steward_kafka_errors_total{error_code=\"Fenced\"} 1"));
    }
}
