//! The HTML report as a browser shows it: headless Chromium loads the page, runs its
//! script, and the test reads the DOM it ends with.

mod common;

use std::process::Command;

/// A mutant's failure: kv/mutant-stale-read serves a stale scan under partition, seed 2.
const ARGS: [&str; 6] = [
    "scenarios/kv/partition.toml",
    "--backend",
    "kv/mutant-stale-read",
    "--seed",
    "2",
    "--html",
];

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!(
        "no chromium on PATH: install it with `apt-get install -y chromium` (scripts/test does)"
    );
}

#[test]
fn the_page_shows_lanes_faults_and_the_operation_that_could_not_be_placed() {
    let dir = std::env::temp_dir().join(format!("squall-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("replay")
        .args(ARGS)
        .arg(&page)
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "the mutant's run fails");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: the only address is the SVG namespace's; nothing is fetched.
    assert_eq!(html.matches("http").count(), 1);
    assert!(!html.contains(" src="));

    let dom = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The script ran and counted what was drawn.
    assert!(
        dom.contains(
            r#"<p id="drawn">240 operations in 4 lanes, 4 faults, 1 could not be placed</p>"#
        ),
        "{dom}"
    );
    for c in 1..=4 {
        assert!(
            dom.contains(&format!(r#"<g class="lane" data-client="{c}">"#)),
            "lane c{c}"
        );
    }
    assert!(
        dom.contains(r#"class="fault partition""#),
        "partition bands"
    );
    // #121, a scan answered from a stale backup, is the operation that could not be placed.
    assert!(
        dom.contains(r#"<rect class="op ok minimal stuck" id="op-121""#),
        "{dom}"
    );
    assert!(dom.contains(r##"<a id="stuck-op" href="#op-121">#121</a>"##));
    let state =
        r#"<ul id="states"><li><code>{k0="c3.3"@6 k1="c2.8"@10 k2="c3.9"@15}</code></li></ul>"#;
    assert!(
        dom.contains(state),
        "the model state where the search stopped"
    );
    // The hover box starts on the stuck operation's details.
    assert!(
        dom.contains(r#"<div id="info">#121 c1 scan "" -&gt; ok ["#),
        "{dom}"
    );
    assert!(dom.contains(r#"class="op unknown"#), "unknown outcomes");
}
