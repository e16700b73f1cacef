//! Decode throughput on one core for typical records:
//! `cargo run -p rules --release --example decode_throughput`.

use std::time::Instant;

use rules::decode::{decode, DecodeConfig};
use rules::event::Feed;

const RECORDS: [(&str, Feed); 3] = [
    (
        r#"{"uscc":"91330802MA2A0001KX","feed":"PEN","kind":"DECIDED","event_id":"pen-2024-000123","version":1,"event_time":"2024-03-01T10:00:00+08:00","ingest_time":"2024-03-01T12:30:00+08:00","source_org":"QZ-SCJGJ","decision_no":"衢市监处罚〔2024〕123号","penalty_types":["warning","fine"],"fine_fen":5000000,"dishonesty_class":"GENERAL","domain":"market","due_date":"2024-03-16","publicity_min_end":"2024-06-01","publicity_max_end":"2025-03-01"}"#,
        Feed::Pen,
    ),
    (
        r#"{"uscc":"91330802MA2A0001KX","feed":"JUD","kind":"ENFORCEMENT_FILED","event_id":"jud-330802-2024-0042","event_time":"2024-02-20T09:00:00+08:00","ingest_time":"2024-02-21T08:00:00+08:00","source_org":"QZ-COURT","case_no":"(2024)浙0802执42号","court_code":"330802","role":"DEFENDANT","cause":"LOAN","amount_fen":123456700,"due_date":"2024-03-20"}"#,
        Feed::Jud,
    ),
    (
        r#"{"uscc":"91330802MA2A0001KX","feed":"FIN","kind":"OVERDUE_LISTED","event_id":"fin-ov-77881","event_time":"2024-01-31T00:00:00+08:00","ingest_time":"2024-02-01T03:00:00+08:00","source_org":"PBOC-QZ","database":"OVERDUE","lender_code":"ICBC-QZ-01","loan_id":"LN-2023-556677","overdue_days":45,"overdue_fen":98765400}"#,
        Feed::Fin,
    ),
];

fn main() {
    let cfg = DecodeConfig::default();
    let mut records = Vec::new();
    for (text, feed) in RECORDS {
        // Put the right check character in place of the placeholder.
        let code = rules::uscc::with_check("91330802MA2A0001K").unwrap_or_default();
        let text = text.replace("91330802MA2A0001KX", &code);
        if let Err(e) = decode(text.as_bytes(), Some(feed), &cfg) {
            eprintln!("sample record rejected: {e}");
            return;
        }
        records.push((text, feed));
    }
    let n = 300_000;
    for (text, feed) in &records {
        let start = Instant::now();
        let mut accepted = 0usize;
        for _ in 0..n {
            accepted += usize::from(decode(text.as_bytes(), Some(*feed), &cfg).is_ok());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{feed}: {} bytes, {:.0} decodes/s ({accepted} accepted)",
            text.len(),
            n as f64 / secs
        );
    }
}
