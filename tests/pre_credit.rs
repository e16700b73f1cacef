//! The pre-credit line in `steward serve` on real Kafka and ClickHouse: every enterprise's
//! state carries the line the spec's formula gives from its colour and the `TAX.PAID`
//! records that count at its `as_of` (recomputed here from the stored records), and the
//! plans topic has one `pre_credit` message per change, whose last one per enterprise is the
//! state's.

use std::collections::BTreeMap;
use std::time::Duration;

use clickhouse::Row;
use connectors::clickhouse::{ClickHouse, StateRow};
use e2e::serve::{gen, produce, read_topic, serve, wait};
use e2e::{conforming, Namespace};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Row, Deserialize)]
struct Tax {
    uscc: String,
    event_time: u32,
    v: u32,
    body: String,
}

/// The spec's formula with its defaults: 3 × Σ × m, m = 1.0 blue / 0.7 green, cap 3M CNY.
fn expected(colour: &str, tax_fen: i64) -> (String, Option<f64>) {
    let m = match colour {
        "blue" => 1.0,
        "green" => 0.7,
        "yellow" => return ("REVIEW".into(), None),
        "red" => return ("INELIGIBLE".into(), None),
        _ => return (String::new(), None),
    };
    let line = ((3.0 * tax_fen as f64 * m).round() as i64).min(300_000_000);
    ("LINE".into(), Some(line as f64))
}

#[test]
fn pre_credit_line_in_state_and_on_the_plans_topic() {
    let ns = Namespace::new("precredit");
    produce(&ns.cfg, &gen(40));
    wait(serve(&ns), Duration::from_secs(600));
    let ch = ClickHouse::new(&ns.cfg.clickhouse).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = ch.database().to_owned();
    let states: Vec<StateRow> = rt
        .block_on(ch.fetch(&format!(
            "SELECT * FROM {db}.enterprise_state FINAL WHERE deleted = 0 ORDER BY uscc"
        )))
        .expect("states");
    // The latest version of every TAX.PAID record.
    let paid: Vec<Tax> = rt
        .block_on(ch.fetch(&format!(
            "SELECT uscc, event_time, v, body FROM {db}.records FINAL \
             WHERE feed = 'TAX' AND kind = 'PAID' AND (event_id, record_version) IN \
             (SELECT event_id, max(record_version) FROM {db}.records FINAL \
              WHERE feed = 'TAX' GROUP BY event_id)"
        )))
        .expect("records");
    assert!(!paid.is_empty());
    let mut lines = 0;
    for s in &states {
        let at = i64::from(s.as_of);
        let tax: i64 = paid
            .iter()
            .filter(|p| p.uscc == s.uscc)
            .filter(|p| {
                let (et, v) = (i64::from(p.event_time), i64::from(p.v));
                et.max(v) <= at && at < rules::time::add_months(et, 12)
            })
            .map(|p| {
                serde_json::from_str::<Value>(&p.body).expect("body")["amount_fen"]
                    .as_i64()
                    .unwrap_or(0)
            })
            .sum();
        let want = expected(&s.colour, tax);
        assert_eq!(
            (s.pre_credit.clone(), s.pre_credit_line),
            want,
            "{} {} tax {tax}",
            s.uscc,
            s.colour
        );
        lines += usize::from(s.pre_credit_line.is_some_and(|l| l > 0.0));
    }
    assert!(lines > 0, "no positive line among {} states", states.len());

    // One message per change; the last per enterprise is its state.
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    let mut messages = 0;
    for (_, payload) in read_topic(&ns.cfg, &ns.cfg.kafka.topics.plans) {
        let m = conforming("plan", &payload);
        // The plans topic also carries the commitments' verification tasks (D46).
        if m["type"] == "verification_task" {
            continue;
        }
        assert_eq!(m["type"], "pre_credit");
        let u = m["uscc"].as_str().expect("uscc").to_owned();
        let (prev, prev_line) = last.get(&u).map_or((Value::Null, Value::Null), |p| {
            (p["pre_credit"].clone(), p["line_fen"].clone())
        });
        assert_eq!(
            (m["previous"].clone(), m["previous_line_fen"].clone()),
            (prev, prev_line),
            "{m}"
        );
        assert!(
            m["previous"] != m["pre_credit"] || m["previous_line_fen"] != m["line_fen"],
            "not a change: {m}"
        );
        last.insert(u, m);
        messages += 1;
    }
    assert!(messages > states.len(), "{messages} messages");
    for s in &states {
        // An enterprise never eligible for anything (not scored from its first record) has
        // had no change to publish.
        let Some(m) = last.get(&s.uscc) else {
            assert_eq!(s.pre_credit, "", "no pre-credit message for {s:?}");
            continue;
        };
        // ClickHouse keeps no decision as ''; the topic says null.
        assert_eq!(
            m["pre_credit"].as_str().unwrap_or_default(),
            s.pre_credit,
            "{}",
            s.uscc
        );
        assert_eq!(m["line_fen"].as_f64(), s.pre_credit_line, "{}", s.uscc);
    }
}
