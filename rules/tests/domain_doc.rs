//! `docs/domain.md`, the project's own account of the domain, names what the embedded
//! catalogue defines: every level-1 and level-2 indicator with its Chinese name and weight,
//! every level-3 row with its id and Chinese name, and every trigger (issue 19 item 5). A
//! catalogue change that the page does not follow fails here.

use rules::catalogue::Catalogue;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/domain.md");
    std::fs::read_to_string(path).expect("docs/domain.md")
}

/// The doc's table row for level-3 row `row`: the line starting `| row |`.
fn indicator_line(doc: &str, row: usize) -> Option<&str> {
    doc.lines().find(|l| l.starts_with(&format!("| {row} | ")))
}

#[test]
fn the_domain_page_names_every_indicator_of_the_catalogue() {
    let cat = Catalogue::embedded();
    let doc = doc();
    assert_eq!(cat.indicators.len(), 49);
    for i in &cat.indicators {
        let line = indicator_line(&doc, i.row).unwrap_or_else(|| panic!("no row {}", i.row));
        assert!(
            line.contains(&format!("| `{}` | {} |", i.id, i.name_zh)),
            "row {} should name {} {}: {line}",
            i.row,
            i.id,
            i.name_zh
        );
    }
    for l in &cat.level1 {
        let entry = format!("| {} {} ", l.code, l.name_zh);
        let line = doc
            .lines()
            .find(|x| x.starts_with(&entry))
            .unwrap_or_else(|| panic!("no level-1 {} {}", l.code, l.name_zh));
        assert!(line.contains(&format!("({:.2})", l.weight)), "{line}");
    }
    for l in &cat.level2 {
        let entry = format!("{} {} ", l.code, l.name_zh);
        let line = doc
            .lines()
            .find(|x| x.contains(&entry))
            .unwrap_or_else(|| panic!("no level-2 {} {}", l.code, l.name_zh));
        let weight = format!("({:.2})", l.weight);
        let short = format!("({})", l.weight);
        assert!(
            line.contains(&weight) || line.contains(&short),
            "{}: {line}",
            l.code
        );
    }
    for t in &cat.triggers {
        assert!(
            doc.lines()
                .any(|x| x.starts_with(&format!("| {} | ", t.code))),
            "trigger {} is not described",
            t.code
        );
    }
}

#[test]
fn the_domain_page_is_self_contained() {
    let doc = doc();
    assert!(
        !doc.contains("shared/spec"),
        "it points outside the repository"
    );
    for file in [
        "docs/outputs.md",
        "docs/decisions.md",
        "rules/catalogue/v1.toml",
    ] {
        assert!(doc.contains(file), "{file} is not named");
        let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::path::Path::new(&path).exists(),
            "{file} does not exist"
        );
    }
}
