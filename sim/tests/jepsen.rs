//! The Jepsen etcd corpus: every history with a known verdict gets it from the generic
//! linearizability checker and the register model.

use std::path::Path;

use squall::check::linear::{check, Budget, Linearizability};
use squall::interop::jepsen;
use squall_models::register::Register;

#[test]
fn verdicts_match_the_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jepsen-etcd");
    let verdicts = std::fs::read_to_string(dir.join("VERDICTS.tsv")).unwrap();
    let mut lines = Vec::new();
    let mut wrong = 0;
    for row in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let (file, want) = row
            .split_once('\t')
            .expect("VERDICTS.tsv: FILE<TAB>VERDICT");
        let history = jepsen::read(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let ops = history.operations();
        let got = match check(&Register, &ops, &Budget::default()) {
            Linearizability::Linearizable => "linearizable".to_string(),
            Linearizability::Violation(c) => format!(
                "not-linearizable (op #{} stuck in {:?}; {} of {} ops)",
                ops[c.op].id,
                c.states,
                c.ops.len(),
                ops.len()
            ),
            Linearizability::Unknown { .. } => "unknown".to_string(),
        };
        let ok = got.split(' ').next() == Some(want);
        wrong += usize::from(!ok);
        lines.push(format!(
            "{} {file}\twant {want}\tgot {got}",
            if ok { "  " } else { "!!" }
        ));
    }
    assert_eq!(lines.len(), 102, "VERDICTS.tsv lists 102 histories");
    assert!(
        wrong == 0,
        "{wrong} of {} wrong:\n{}",
        lines.len(),
        lines.join("\n")
    );
}
