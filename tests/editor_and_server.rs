//! Runs `examples/editor_and_server`: two processes over stdio, each calling the other through its generated client, with progress and a cancelled request.

use std::process::Command;

#[test]
fn the_editor_and_server_example_runs_to_its_end() {
    // The example as a user runs it: built (already, by `cargo test`) and
    // started by cargo, in this build's target directory.
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "editor_and_server"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the example failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "initialized: word-counter",
        "message: hello, editor",
        "progress count created",
        "progress count begin: counting words",
        "progress count report: 33%",
        "progress count report: 100%",
        "words: 6",
        "progress count end: 6 words",
        "measured line 1 of 3",
        "measured line 2 of 3",
        "measured line 3 of 3",
        "line lengths: [13, 9, 3]",
        "progress index begin: indexing",
        "cancelling the indexing",
        "message: indexing cancelled",
        "server exited",
    ] {
        assert!(lines.contains(&expected), "no `{expected}` in:\n{stdout}");
    }
    // Reports of one token arrive in the order sent.
    let at = |line: &str| lines.iter().position(|l| *l == line);
    assert!(at("progress count begin: counting words") < at("progress count report: 33%"));
    assert!(at("progress count report: 100%") < at("progress count end: 6 words"));
    // A handler's reports come before its answer, in order, typed.
    assert!(at("measured line 1 of 3") < at("measured line 2 of 3"));
    assert!(at("measured line 3 of 3") < at("line lengths: [13, 9, 3]"));
}
