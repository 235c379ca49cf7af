//! The HTML report as a browser shows it: headless Chromium loads the page, runs its
//! script, and the test reads the DOM it ends with.

mod common;

use std::process::Command;

/// A mutant's failure: kv/mutant-stale-read serves stale reads under partition.
const SCENARIO: &str = "scenarios/kv/partition.toml";
const MUTANT: &str = "kv/mutant-stale-read";

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
    // The first seed the mutant fails, whatever the workload draws.
    let found = common::squall(&[
        "run",
        SCENARIO,
        "--backend",
        MUTANT,
        "--seeds",
        "0..64",
        "--fail-fast",
        "--runs",
        "failures",
    ]);
    let found = String::from_utf8_lossy(&found.stdout).into_owned();
    let line = found
        .lines()
        .find(|l| l.starts_with("seed="))
        .expect("a failing seed");
    let seed = line
        .split(' ')
        .next()
        .unwrap()
        .strip_prefix("seed=")
        .unwrap();
    let ops: usize = line
        .split(" ops=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The operation that could not be placed, as the report names it.
    let stuck = found
        .split("not linearizable: #")
        .nth(1)
        .expect("a linearizability violation")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "replay",
            SCENARIO,
            "--backend",
            MUTANT,
            "--seed",
            seed,
            "--html",
        ])
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
    let drawn = format!(r#"<p id="drawn">{ops} operations in 4 lanes, "#);
    assert!(dom.contains(&drawn), "{dom}");
    assert!(dom.contains(" faults, 1 could not be placed</p>"), "{dom}");
    for c in 1..=4 {
        let lane = format!(r#"<g class="lane" data-client="{c}">"#);
        assert!(dom.contains(&lane), "lane c{c}");
    }
    assert!(
        dom.contains(r#"class="fault partition""#),
        "partition bands"
    );
    // A read answered from a stale backup is the operation that could not be placed.
    let bar = format!(r#"<rect class="op ok minimal stuck" id="op-{stuck}""#);
    assert!(dom.contains(&bar), "{dom}");
    let link = format!(r##"<a id="stuck-op" href="#op-{stuck}">#{stuck}</a>"##);
    assert!(dom.contains(&link), "{dom}");
    let state = found
        .split("model state(s) where the search stopped: ")
        .nth(1)
        .unwrap();
    let state = state.lines().next().unwrap().split(" | ").next().unwrap();
    let state = format!(r#"<ul id="states"><li><code>{state}</code></li>"#);
    assert!(dom.contains(&state), "the model state: {state}\n{dom}");
    // The hover box starts on the stuck operation's details.
    assert!(
        dom.contains(&format!(r#"<div id="info">#{stuck} c"#)),
        "{dom}"
    );
    assert!(dom.contains(r#"class="op unknown"#), "unknown outcomes");
}
