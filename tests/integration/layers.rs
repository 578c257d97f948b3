//! The layering rules of `src/`, checked over the source text: no module imports a module of a higher
//! layer, module imports form no cycle, and `domain/` does no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the top; a module may use its own layer's modules and those below. `cli` holds
/// the flags (clap types) that `main` parses and `cmd` dispatches on; it uses nothing.
const LAYERS: [(&str, u8); 12] = [
    ("cli", 6),
    ("cmd", 6),
    ("restore", 5),
    ("setup", 5),
    ("context", 4),
    ("store", 3),
    ("system", 2),
    ("domain", 1),
    ("root", 0),
    ("logging", 0),
    ("fault", 0),
    ("exit_codes", 0),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file except the crate roots, by module path (`domain::rule`, `cmd`).
fn modules() -> BTreeMap<String, String> {
    walkdir::WalkDir::new(src())
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .filter_map(|e| {
            let rel = e.path().strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            (!matches!(name.as_str(), "lib" | "main" | "layers"))
                .then(|| (name, std::fs::read_to_string(e.path()).unwrap()))
        })
        .collect()
}

/// The modules a file's text names through `crate::` paths (the longest known prefix of each).
fn uses(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let path: String = text[i + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").collect();
        if let Some(m) = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| known.contains(m))
        {
            out.insert(m);
        }
    }
    out
}

fn layer(module: &str) -> u8 {
    let top = module.split("::").next().unwrap();
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .unwrap_or_else(|| panic!("module {module} has no layer: add it to LAYERS"))
        .1
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, text)| {
            let mut deps = uses(text, &known);
            deps.remove(name);
            // A folder's `mod.rs` declares its children; that is not a use.
            deps.retain(|d| !d.starts_with(&format!("{name}::")));
            (name.clone(), deps)
        })
        .collect()
}

#[test]
fn no_module_uses_a_higher_layer() {
    let mut wrong = Vec::new();
    for (module, deps) in graph() {
        for dep in deps {
            if layer(&dep) > layer(&module) {
                wrong.push(format!("{module} -> {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "uses of a higher layer: {wrong:#?}");
}

#[test]
fn module_imports_form_no_cycle() {
    let graph = graph();
    // Depth-first search with three colours; a grey node reached again closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        colour.insert(node, 1);
        stack.push(node);
        for dep in &graph[node] {
            match colour.get(dep.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == dep).unwrap();
                    let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(dep, graph, colour, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        colour.insert(node, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in graph.keys() {
        if !colour.contains_key(node.as_str()) {
            if let Some(cycle) = visit(node, &graph, &mut colour, &mut Vec::new()) {
                panic!("import cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn the_domain_does_no_io() {
    let mut wrong = Vec::new();
    for (module, text) in modules().iter().filter(|(m, _)| m.starts_with("domain")) {
        for banned in ["std::fs", "std::process", "std::net::TcpStream", "std::io::stdin"] {
            if text.contains(banned) {
                wrong.push(format!("{module} mentions {banned}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_checks_see_what_they_check() {
    let graph = graph();
    assert!(graph.len() > 20, "{:?}", graph.keys());
    assert!(graph["cmd::status"].contains("domain::sysctl"));
    assert!(graph["domain::compare"].contains("domain::sysctl"));
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    assert_eq!(
        uses("use crate::system::{fsutil, iptables};", &known),
        BTreeSet::from(["system".to_string()]),
        "a brace group names its folder"
    );
}
