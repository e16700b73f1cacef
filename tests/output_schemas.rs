//! The output contract's JSON Schemas (`docs/schemas/`, generated from the message types)
//! against what `steward run` writes: every line of its files conforms, and the
//! schemas refuse what the contract does not allow. The topics' messages are checked the
//! same way by the `serve`, `pre_credit`, `plan` and `commitments` tests.

use anyhow::Result;
use e2e::{conforming, steward_run};

#[test]
fn every_line_of_the_run_files_conforms_to_its_schema() -> Result<()> {
    let out = steward_run(200, "e2e_output_schemas")?;
    for (file, schema) in [
        ("colour_changes.jsonl", "colour_change"),
        ("alerts.jsonl", "alert"),
        ("dead_letters.jsonl", "dead_letter"),
        ("commitment_tasks.jsonl", "commitment_task"),
        ("state.jsonl", "state"),
    ] {
        let text = std::fs::read_to_string(out.0.join(file))?;
        let mut lines = 0;
        for line in text.lines() {
            let m = conforming(schema, line.as_bytes());
            assert_eq!(m["format_version"], 3, "{file}: {m}");
            lines += 1;
        }
        assert!(lines > 0, "{file} is empty");
    }
    Ok(())
}

#[test]
fn the_schemas_refuse_what_the_contract_does_not_allow() {
    let change = r#"{"format_version":3,"uscc":"91350100M000100Y43","from":null,"to":"green",
        "score":812.5,"score_colour":"green","triggers":[],"reasons":[],
        "as_of":"2024-01-06T17:44:16Z","model_version":null,"rules_version":"catalogue-v1",
        "change_id":"ab"}"#;
    conforming("colour_change", change.as_bytes());
    for bad in [
        change.replace(r#""to":"green""#, r#""to":"purple""#),
        change.replace(r#""format_version":3,"#, ""),
        change.replace(r#""score":812.5"#, r#""score":"812.5""#),
    ] {
        let refused = std::panic::catch_unwind(|| conforming("colour_change", bad.as_bytes()));
        assert!(refused.is_err(), "accepted {bad}");
    }
    let plan = r#"{"format_version":3,"type":"pre_credit","uscc":"u","as_of":"2024-01-06T17:44:16Z",
        "colour":"none","pre_credit":null,"line_fen":null,"previous":"LINE","previous_line_fen":5}"#;
    conforming("plan", plan.as_bytes());
    let unknown_type = plan.replace(r#""type":"pre_credit""#, r#""type":"loan""#);
    let refused = std::panic::catch_unwind(|| conforming("plan", unknown_type.as_bytes()));
    assert!(refused.is_err(), "accepted {unknown_type}");
}
