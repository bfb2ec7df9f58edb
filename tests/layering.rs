//! The layer order, enforced: every `crate::…` path in `src/` must name a module of the
//! same layer or one below. The order is written once, here, and stated in `lib.rs`'s
//! module doc and in `ARCHITECTURE.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The crate's top-level modules, bottom layer first. A module may use its own layer's
/// modules and every layer below, never one above.
const LAYERS: &[&[&str]] = &[
    // The shared vocabulary and small helpers: import nothing of the crate but each other.
    &["types", "util", "rng"],
    &["error", "keys"],
    &["storage"],
    &["format"],
    &["pager"],
    &["btree"],
    &["mvcc"],
    &["commit"],
    &["checkpoint"],
    &["engine"],
    &["api"],
    &["raftlog"],
];

/// The vocabulary module imports nothing of the crate at all.
const VOCABULARY: &str = "types";

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (doc comments name upper layers in links).
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names re-exported at the crate root (`pub use module::{A, B}` in lib.rs), so that a
/// `crate::Name` path resolves to the module that defines it.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let text = strip_comments(lib);
    for stmt in text.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() {
                names.insert(item.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// Every crate module a file's `crate::` paths reach, with the path as written.
fn reached(text: &str, roots: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::`, not ours
        }
        let rest = &text[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        for name in names.into_iter().filter(|n| !n.is_empty() && *n != "self") {
            let module = if layer_of(name).is_some() {
                name.to_string()
            } else {
                roots
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| panic!("crate::{name} names no module or root item"))
            };
            out.push((module, format!("crate::{name}")));
        }
    }
    out
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let roots = root_names(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("module name");
        if module == "lib" {
            continue;
        }
        let own = layer_of(&module).unwrap_or_else(|| {
            panic!(
                "src/{} is in no layer: add `{module}` to LAYERS",
                rel.display()
            )
        });
        let text = strip_comments(&std::fs::read_to_string(&file).expect("read"));
        for (dep, path) in reached(&text, &roots) {
            let dep_layer = layer_of(&dep).expect("resolved to a layer");
            let upward = dep_layer > own;
            let vocabulary_leak = module == VOCABULARY && dep != module;
            if upward || vocabulary_leak {
                found.push(format!(
                    "src/{} ({module}, layer {own}) uses {path} ({dep}, layer {dep_layer})",
                    rel.display()
                ));
            }
        }
    }
    found
}

#[test]
fn no_module_reaches_a_layer_above_its_own() {
    let found = violations();
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn every_layer_names_an_existing_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            src.join(format!("{module}.rs")).exists() || src.join(module).is_dir(),
            "LAYERS names `{module}`, which src/ does not have"
        );
    }
}

#[test]
fn the_scanner_sees_root_and_grouped_paths() {
    let roots = root_names("pub use api::{Database, Options};\npub use error::{Error, Result};");
    let got = reached(
        "use crate::{Database, Error};\nlet x = crate::engine::Engine::open();",
        &roots,
    );
    let modules: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(modules, ["api", "error", "engine"]);
}
