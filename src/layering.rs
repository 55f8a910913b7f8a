//! The module layering of `lib.rs`, enforced: a test reads every source file, resolves each `crate::…`,
//! `super::…` and `self::…` path to the module it names, and fails when a module reaches a module of its own
//! layer or above (which is also what any import cycle would need). Inside `session` the same rule holds
//! between its parts, so the conversation core can never come to depend on a transport.
//!
//! The tables here are the source of truth; `lib.rs` and `session/mod.rs` draw the same picture.

/// Top-level modules, lowest layer first. A module may use modules of lower layers only.
pub const LAYERS: &[&[&str]] = &[
    &["audio", "retry", "telemetry", "http_client", "build_info"],
    &["config"],
    &["crypto", "providers", "limits"],
    &["db", "tools"],
    &["metrics", "api_error", "auth", "emulators", "agents"],
    &["persistence", "emulate"],
    &["recording", "registry"],
    &["session"],
    &["state"],
    &["routes"],
    &["startup"],
    &["cli"],
];

/// The parts of `session`, lowest first: the provider clients know nothing of the conversation, the
/// conversation nothing of the actor that runs it or of any transport.
pub const SESSION_LAYERS: &[&[&str]] = &[
    &["ws_upstream"],
    &["deepgram_link", "llm_worker", "tts_link"],
    &["settings"],
    &["conversation"],
    &["children"],
    &["client_socket"],
    &["browser", "twilio"],
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::{LAYERS, SESSION_LAYERS};

    fn layer_of(table: &[&[&str]], name: &str) -> Option<usize> {
        table.iter().position(|layer| layer.contains(&name))
    }

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The module path of a source file: `src/session/conversation/turns.rs` → `session::conversation::turns`.
    fn module_of(src: &Path, file: &Path) -> Vec<String> {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts
    }

    /// The identifiers at the head of each item of a `{…}` group (or the single identifier) after a path.
    fn heads(rest: &str) -> Vec<String> {
        let ident =
            |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
        if !rest.starts_with('{') {
            return vec![ident(rest)];
        }
        let (mut depth, mut items, mut current) = (0, Vec::new(), String::new());
        for c in rest.chars() {
            match c {
                '{' => {
                    depth += 1;
                    if depth == 1 {
                        continue;
                    }
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        items.push(std::mem::take(&mut current));
                        break;
                    }
                }
                ',' if depth == 1 => {
                    items.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        items.iter().map(|i| ident(i)).filter(|i| !i.is_empty()).collect()
    }

    /// The modules a file names, as absolute module paths (at least their first two parts).
    fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
        let mut out = BTreeSet::new();
        // Whole `use` statements can span lines; comments and doc text are not code.
        let code: String = text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join(" ");
        for (start, _) in code.match_indices("::") {
            // The path this `::` continues, read backwards to its first segment.
            let before = &code[..start];
            let head_start =
                before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
            let path = &code[head_start..start];
            if path.contains("::") {
                continue; // only the first `::` of a path matters
            }
            let rest = &code[start + 2..];
            let base: Vec<String> = match path {
                "crate" => Vec::new(),
                "self" => module.to_vec(),
                "super" => {
                    // `super::super::x` is resolved segment by segment below.
                    let mut base = module[..module.len().saturating_sub(1)].to_vec();
                    let mut rest = rest;
                    while let Some(r) = rest.strip_prefix("super::") {
                        base.pop();
                        rest = r;
                    }
                    for head in heads(rest) {
                        let mut m = base.clone();
                        m.push(head);
                        out.insert(m);
                    }
                    continue;
                }
                _ => continue,
            };
            for head in heads(rest) {
                let mut m = base.clone();
                m.push(head);
                out.insert(m);
            }
        }
        out
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut violations = Vec::new();
        let mut unknown = BTreeSet::new();
        for file in &files {
            let module = module_of(&src, file);
            let Some(top) = module.first().cloned() else { continue };
            if top == "lib" || top == "main" || top == "layering" {
                continue;
            }
            let Some(own) = layer_of(LAYERS, &top) else {
                unknown.insert(top);
                continue;
            };
            let text = std::fs::read_to_string(file).unwrap();
            for target in references(&module, &text) {
                let Some(used) = target.first() else { continue };
                let Some(layer) = layer_of(LAYERS, used) else { continue }; // a local item, not a module
                if *used != top && layer >= own {
                    violations.push(format!("{}: uses {} (layer {layer} ≥ {own})", file.display(), target.join("::")));
                }
                if *used == top && top == "session" && module.len() > 1 && target.len() > 1 {
                    let (from, to) = (&module[1], &target[1]);
                    if let (Some(a), Some(b)) = (layer_of(SESSION_LAYERS, from), layer_of(SESSION_LAYERS, to))
                        && from != to
                        && b >= a
                    {
                        violations.push(format!("{}: session::{from} uses session::{to}", file.display()));
                    }
                }
            }
            if top == "session" && module.len() > 1 && layer_of(SESSION_LAYERS, &module[1]).is_none() {
                unknown.insert(format!("session::{}", module[1]));
            }
        }
        assert!(unknown.is_empty(), "modules missing from the layering tables: {unknown:?}");
        assert!(violations.is_empty(), "imports against the layering:\n{}", violations.join("\n"));
    }

    #[test]
    fn the_reader_resolves_groups_super_and_self() {
        let m: Vec<String> = ["session", "conversation", "turns"].iter().map(|s| s.to_string()).collect();
        let refs = references(
            &m,
            "use super::{latency::TurnTimes, Outbox};\nuse crate::{db::Role, metrics};\nuse super::super::browser::X;\n// crate::routes in a comment",
        );
        let names: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
        assert_eq!(
            names,
            ["db", "metrics", "session::browser", "session::conversation::Outbox", "session::conversation::latency"]
        );
    }

    #[test]
    fn a_reference_upwards_is_caught() {
        let m: Vec<String> = ["db", "sessions"].iter().map(|s| s.to_string()).collect();
        let refs = references(&m, "fn f() { crate::session::conversation::Event::End; }");
        assert!(refs.iter().any(|r| r[0] == "session"));
        assert!(layer_of(LAYERS, "session") >= layer_of(LAYERS, "db"));
    }
}
