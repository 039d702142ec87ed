//! The crate's modules form layers: no module depends, directly or through others, on one that
//! depends on it. The graph is computed from the source text so that it follows the crate as
//! modules come and go.
//!
//! Nodes are file modules (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`). Every
//! `crate::…`, `super::…` and `self::…` path in non-test code is an edge to the deepest file
//! module it names. Comments, string literals and `#[cfg(test)]` items are left out, and so are
//! file modules declared under `#[cfg(test)]`. A parent declaring `mod child;` is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One file module: its path segments (`["ops", "status"]`) and its text without comments,
/// strings and test items.
struct FileModule {
    path: Vec<String>,
    code: String,
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut crates = vec![root.join("src")];
    // The workspace's library crates, whichever exist.
    if let Ok(dir) = std::fs::read_dir(root.join("crates")) {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path().join("src")).collect();
        more.sort();
        crates.extend(more.into_iter().filter(|p| p.join("lib.rs").exists()));
    }
    let mut found = Vec::new();
    for src in &crates {
        let graph = dependency_graph(&load_modules(src));
        assert!(graph.len() > 1, "no modules found under {}", src.display());
        found.extend(cycles(&graph));
    }
    assert!(
        found.is_empty(),
        "import cycles between modules (each line: modules that depend on each other, and \
         one path around them):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_graph_sees_paths_in_code_but_not_in_comments_strings_or_tests() {
    let text = r##"
        //! Uses [`crate::a`] in a doc comment.
        use crate::b::{c::D, e};
        use super::sibling;
        /* crate::f */
        fn g() -> &'static str { let _ = '"'; let _ = crate::h::I; "crate::j" }
        const K: &str = r#"crate::k"#;
        #[cfg(test)]
        mod tests { use crate::l; }
        #[cfg(test)]
        fn helper() { crate::m::n(); }
    "##;
    let code = strip(text);
    let mut found = Vec::new();
    for path in paths(&code) {
        found.push(path.join("::"));
    }
    assert_eq!(
        found,
        [
            "crate::b::c::D",
            "crate::b::e",
            "super::sibling",
            "crate::h::I"
        ]
    );
}

#[test]
fn a_cycle_is_reported_with_its_members_and_a_path_around_it() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c", "d"]),
        ("c", vec!["a"]),
        ("d", vec![]),
        ("e", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), ["{a, b, c}: a → b → c → a"]);
    let layered: BTreeMap<String, BTreeSet<String>> =
        graph.into_iter().filter(|(k, _)| k != "c").collect();
    assert!(cycles(&layered).is_empty());
}

/// Every file module under `src` that is compiled outside tests, except the binary's root.
fn load_modules(src: &Path) -> Vec<FileModule> {
    let mut out = Vec::new();
    let lib = src.join("lib.rs");
    load(&lib, Vec::new(), &mut out);
    out
}

/// Loads the module in `file` (path `path`) and, recursively, the file modules it declares
/// outside `#[cfg(test)]`.
fn load(file: &Path, path: Vec<String>, out: &mut Vec<FileModule>) {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let code = strip(&text);
    let dir: PathBuf = if file
        .file_name()
        .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
    {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    for child in declared_file_modules(&code) {
        let mut child_path = path.clone();
        child_path.push(child.clone());
        let flat = dir.join(format!("{child}.rs"));
        let nested = dir.join(&child).join("mod.rs");
        if flat.exists() {
            load(&flat, child_path, out);
        } else if nested.exists() {
            load(&nested, child_path, out);
        }
    }
    out.push(FileModule { path, code });
}

/// The names in `mod name;` declarations (test-only ones are already stripped).
fn declared_file_modules(code: &str) -> Vec<String> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t == "mod" && tokens.get(i + 2).is_some_and(|t| t == ";") {
            if let Some(name) = tokens.get(i + 1) {
                out.push(name.clone());
            }
        }
    }
    out
}

/// Module → the modules it uses (itself excluded).
fn dependency_graph(modules: &[FileModule]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let mut graph = BTreeMap::new();
    for m in modules {
        let mut deps = BTreeSet::new();
        for path in paths(&m.code) {
            let Some(absolute) = absolute(&m.path, &path) else {
                continue;
            };
            // The deepest file module the path names; the crate root itself only declares.
            let target = (1..=absolute.len())
                .rev()
                .map(|n| absolute[..n].to_vec())
                .find(|p| known.contains(p));
            if let Some(target) = target {
                if target != m.path {
                    deps.insert(target.join("::"));
                }
            }
        }
        graph.insert(name(&m.path), deps);
    }
    graph
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

/// `path` as seen from module `from`, from the crate root; `None` if it leaves the crate.
fn absolute(from: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = from.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The strongly connected components with more than one module, each as one line:
/// the members and a cycle through them.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // Tarjan's algorithm, iteratively small enough to write recursively: the crate has
    // tens of modules.
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<&'g str>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.components
        .iter()
        .map(|c| format!("{{{}}}: {}", c.join(", "), one_cycle(graph, c).join(" → ")))
        .collect()
}

/// A cycle through the first module of `component`, staying inside it (breadth-first, so
/// the shortest).
fn one_cycle(graph: &BTreeMap<String, BTreeSet<String>>, component: &[&str]) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().copied().collect();
    let start = component[0];
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if w == start {
                let mut path = vec![v.to_string()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    path.push(at.to_string());
                }
                path.reverse();
                path.push(start.to_string());
                return path;
            }
            if inside.contains(w) && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.iter().map(|s| s.to_string()).collect()
}

/// Every `crate::`, `super::` or `self::` path in `code`, with `{a, b::c}` groups expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let preceded_by_path = i > 0 && tokens[i - 1] == "::";
        if matches!(t, "crate" | "super" | "self")
            && !preceded_by_path
            && tokens.get(i + 1).is_some_and(|t| t == "::")
        {
            let mut prefix = Vec::new();
            i = path_tree(&tokens, i, &mut prefix, &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads a use tree at `tokens[i]` onto `prefix`, pushing every full path; returns the index
/// after it.
fn path_tree(
    tokens: &[String],
    mut i: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let depth = prefix.len();
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                loop {
                    match tokens.get(i).map(String::as_str) {
                        Some("}") => {
                            i += 1;
                            break;
                        }
                        Some(",") => i += 1,
                        None => break,
                        Some(_) => i = path_tree(tokens, i, prefix, out),
                    }
                }
                prefix.truncate(depth);
                return i;
            }
            Some(t) if is_ident(t) => {
                prefix.push(t.to_string());
                i += 1;
                if tokens.get(i).is_some_and(|t| t == "::") {
                    i += 1;
                    continue;
                }
                out.push(prefix.clone());
                prefix.truncate(depth);
                return i;
            }
            _ => {
                if prefix.len() > depth {
                    out.push(prefix.clone());
                }
                prefix.truncate(depth);
                return i;
            }
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// `text` without comments, string and character literals (each replaced by a space) and
/// without the items marked `#[cfg(test)]`.
fn strip(text: &str) -> String {
    let no_literals = strip_literals(text);
    strip_test_items(&no_literals)
}

fn strip_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let ident_before = |i: usize| i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r')))
            && !ident_before(i)
            && {
                let mut j = i + if c[i] == 'b' { 2 } else { 1 };
                while c.get(j) == Some(&'#') {
                    j += 1;
                }
                c.get(j) == Some(&'"')
            }
        {
            // Raw string: r#"…"# with as many hashes at the end.
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a) left as it is.
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(' ');
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(' ');
            } else {
                out.push(c[i]);
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Removes every item after a `#[cfg(test)]` attribute: up to its `;`, or through its
/// balanced `{ … }` block.
fn strip_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let mut depth = 0usize;
        // `;` inside brackets or parentheses (`[u8; 4]`) does not end the item.
        let mut nest = 0usize;
        let mut end = item.len();
        for (k, ch) in item.char_indices() {
            match ch {
                '(' | '[' => nest += 1,
                ')' | ']' => nest = nest.saturating_sub(1),
                ';' if depth == 0 && nest == 0 => {
                    end = k + 1;
                    break;
                }
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}
