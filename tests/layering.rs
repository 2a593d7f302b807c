//! The layering rule: the core crate (`src/`, the `rpcpeer` binary aside) names no socket, runs no accept loop and decodes no URL; those are the transport crates' (ARCHITECTURE.md).

use std::path::{Path, PathBuf};

/// What the core's code must not name, and what naming it would mean.
const FORBIDDEN: [(&str, &str); 10] = [
    ("tokio::net", "tokio's sockets"),
    ("std::net::Tcp", "a std socket"),
    ("std::os::unix::net", "a std Unix socket"),
    ("TcpListener", "a TCP listener"),
    ("TcpStream", "a TCP socket"),
    ("UnixListener", "a Unix socket listener"),
    ("UnixStream", "a Unix socket"),
    (".accept()", "an accept loop"),
    (
        "form_urlencoded",
        "query-string decoding, which rpcpeer-ws does",
    ),
    ("percent_encoding", "URL decoding, which rpcpeer-ws does"),
];

/// Each forbidden name in `code`, with its line number. Comment lines (doc
/// comments included, whose examples are the user's code) do not count.
fn offences(code: &str) -> Vec<(usize, &'static str, &'static str)> {
    code.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .flat_map(|(i, line)| {
            FORBIDDEN
                .iter()
                .filter(move |(name, _)| line.contains(name))
                .map(move |&(name, why)| (i + 1, name, why))
        })
        .collect()
}

/// Every `.rs` file under `dir`, except those under `skip`.
fn sources(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.starts_with(skip) {
            continue;
        }
        if path.is_dir() {
            sources(&path, skip, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_core_names_no_socket_and_decodes_no_url() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &root.join("src/bin"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("ws_server.rs")),
        "the scan must see the core's modules: {files:?}"
    );
    let mut found = Vec::new();
    for file in &files {
        let code = std::fs::read_to_string(file).expect("a source file");
        for (line, name, why) in offences(&code) {
            let file = file.strip_prefix(root).unwrap_or(file).display();
            found.push(format!("{file}:{line}: `{name}` ({why})"));
        }
    }
    assert!(
        found.is_empty(),
        "the core crate knows no sockets; move this into a transport crate:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_catches_a_socket_in_code_but_not_in_comments() {
    let code = "\
/// let listener = tokio::net::TcpListener::bind(addr).await?;
// form_urlencoded was here
use tokio::net::TcpListener;
fn f(q: &str) { let _ = percent_encoding::percent_decode_str(q); }
";
    let lines: Vec<_> = offences(code)
        .iter()
        .map(|(line, name, _)| (*line, *name))
        .collect();
    assert_eq!(
        lines,
        [
            (3, "tokio::net"),
            (3, "TcpListener"),
            (4, "percent_encoding")
        ]
    );
}

/// A feature list's entries, from a parsed `Cargo.toml` array.
fn entries(array: &toml_edit::Item) -> Vec<String> {
    array
        .as_array()
        .map(|array| {
            array
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_library_features_turn_on_no_sockets_of_tokio() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("Cargo.toml");
    let manifest: toml_edit::DocumentMut = manifest.parse().expect("Cargo.toml parses");

    let tokio = entries(&manifest["dependencies"]["tokio"]["features"]);
    assert!(
        !tokio.is_empty(),
        "the core's tokio features should be listed"
    );
    for socketful in ["net", "full"] {
        assert!(
            !tokio.iter().any(|f| f == socketful),
            "the core's tokio dependency turns on `{socketful}`: {tokio:?}"
        );
    }
    for dep in ["form_urlencoded", "percent-encoding", "hyper", "socket2"] {
        assert!(
            manifest["dependencies"].get(dep).is_none(),
            "the core depends on `{dep}`, which belongs to a transport crate"
        );
    }

    // The binary's feature may turn tokio's sockets on (it binds the
    // listeners), and nothing but the binary needs it.
    let features = manifest["features"].as_table().expect("[features]");
    for (name, enabled) in features.iter().filter(|(name, _)| *name != "cli") {
        for entry in entries(enabled) {
            assert!(
                !["tokio/net", "tokio/full", "tokio?/net", "tokio?/full"].contains(&entry.as_str()),
                "the library feature `{name}` turns on `{entry}`"
            );
        }
    }
    let bins = manifest["bin"].as_array_of_tables().expect("[[bin]]");
    for bin in bins {
        assert!(
            entries(&bin["required-features"]).contains(&"cli".to_owned()),
            "every binary requires the `cli` feature"
        );
    }
}
