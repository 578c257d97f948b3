//! Every `--json` document, of every command and error path, validated against
//! `schema/iwss-keeper.schema.json`: as one of the schema's documents, and as the one its
//! command promises.

use std::fs;

use crate::testenv::{copy_tree, testdata, Run, TestEnv};

fn schema() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/iwss-keeper.schema.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The schema's complaints about `doc`.
fn errors(schema: &serde_json::Value, doc: &serde_json::Value) -> Vec<String> {
    jsonschema::validator_for(schema)
        .unwrap()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// Checks `run`'s stdout is one JSON document valid against the schema, and against its
/// definition `def` alone.
fn check(what: &str, run: &Run, def: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}):\n{}", run.text()));
    let whole = schema();
    let found = errors(&whole, &doc);
    assert!(found.is_empty(), "{what}: {found:#?}\n{doc:#}");
    let mut one = whole.clone();
    one.as_object_mut().unwrap().remove("oneOf");
    one["$ref"] = serde_json::json!(format!("#/$defs/{def}"));
    let found = errors(&one, &doc);
    assert!(found.is_empty(), "{what} as {def}: {found:#?}\n{doc:#}");
    doc
}

#[test]
fn the_schema_rejects_what_it_should() {
    let whole = schema();
    let v = jsonschema::validator_for(&whole).unwrap();
    for bad in [
        serde_json::json!({ "error": "x", "exit_code": 2 }),
        serde_json::json!({ "schema_version": 1, "error": "x", "exit_code": 2 }),
        serde_json::json!({ "schema_version": 2, "snapshots": [], "extra": true }),
        serde_json::json!([]),
    ] {
        assert!(!v.is_valid(&bad), "accepted {bad}");
    }
}

#[test]
fn every_command_and_error_path_prints_a_valid_document() {
    let case = testdata().join("iwsva-sp2-to-sp3");
    let before = case.join("before").display().to_string();
    let after = case.join("after").display().to_string();
    let env = TestEnv::from_tree(&case.join("before"));
    check("usage error", &env.keeper(&["--json", "frobnicate"]), "error");
    check("no snapshot", &env.keeper(&["--json", "diff"]), "error");
    check("register", &env.keeper(&["--json", "register"]), "register");
    let snap = check(
        "snapshot",
        &env.keeper(&["--json", "snapshot", "--label", "x"]),
        "snapshot",
    );
    let id = snap["id"].as_str().unwrap().to_string();
    check("list", &env.keeper(&["--json", "list"]), "list");
    check("show", &env.keeper(&["--json", "show", &id]), "show");
    check("show tree", &env.keeper(&["--json", "show", &after]), "show");
    check(
        "show --file",
        &env.keeper(&["--json", "show", &id, "--file", "/usr/iwss/iwsvafw.sh"]),
        "show_file",
    );
    check("snapshot", &env.keeper(&["--json", "snapshot"]), "snapshot");
    check("forget", &env.keeper(&["--json", "forget", &id]), "removed_snapshots");
    check("status", &env.keeper(&["--json", "status"]), "status");
    check("diff", &env.keeper(&["--json", "diff", &before, &after]), "report");
    check(
        "diff bad version",
        &env.keeper(&[
            "--json",
            "diff",
            &before,
            &testdata().join("bad-version/after").display().to_string(),
        ]),
        "error",
    );
    // The upgrade, then every kind of restore.
    copy_tree(&case.join("after"), &env.root);
    check("dry run", &env.keeper(&["--json", "restore", "--dry-run"]), "report");
    let mut failing = TestEnv::from_tree(&case.join("after"));
    failing.state = env.state.clone();
    // No restart program under this root: the restore fails and is rolled back, one document.
    let failed = check(
        "failed restore",
        &failing.keeper(&["--json", "restore", "--from", &before]),
        "report",
    );
    assert!(failed["error"].is_string(), "{failed:#}");
    assert!(
        failed["live"].as_array().unwrap().iter().any(|s| s["step"] == "failed"),
        "{failed:#}"
    );
    check("restore", &env.keeper(&["--json", "restore", "--no-restart"]), "report");
    check("undo dry run", &env.keeper(&["--json", "undo", "--dry-run"]), "undo");
    check("undo", &env.keeper(&["--json", "undo", "--no-restart"]), "undo");
    check("nothing to undo", &env.keeper(&["--json", "undo"]), "error");
    check(
        "prune",
        &env.keeper(&["--json", "prune", "--keep", "1"]),
        "removed_snapshots",
    );
    check(
        "prune-backups",
        &env.keeper(&["--json", "prune-backups", "--older-than", "0"]),
        "removed_backups",
    );
    let bad = env.state.join("snapshots/20200101T000000Z-bad000");
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("manifest.json"), "{").unwrap();
    check("list with a corrupt snapshot", &env.keeper(&["--json", "list"]), "list");
    check("status after", &env.keeper(&["--json", "status"]), "status");
    check("unregister", &env.keeper(&["--json", "unregister"]), "unregister");
}
