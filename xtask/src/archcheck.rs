//! The architecture check of `cargo xtask lint`: which top-level module of the kernel crate may use which.
//!
//! # Why
//!
//! The kernel crate (`kernel/src`) is one crate, so rustc lets any module reach any other through
//! `crate::…`. Left alone, the rooms blur: a driver calls into the swap code, the CPU code into the
//! workload, and the layering that the chapters of `docs/` describe is no longer true of the code. The
//! separate crates under `kernel/libs` get their layering from Cargo; the kernel crate gets it from
//! [`TABLE`], one table, checked on every lint.
//!
//! # Vocabulary
//!
//! - *top-level module*: `kernel/src/X.rs` or the directory `kernel/src/X/`; every file under it belongs
//!   to it. The root files [`ROOT_FILES`] (`lib.rs`, `main.rs`) belong to none and are not checked.
//! - *use* (an edge `A → B`): a file of module A names module B through the crate root: `use crate::B…`,
//!   a `B` inside `use crate::{…}` groups (nested, over several lines), a `crate::B::…` path in an
//!   expression or a type, `$crate::B` in a macro, or `super::…::B` climbing to the root. A name at the
//!   crate root that is not a module is charged to the module it comes from: [`ROOT_ITEMS`] first
//!   (`println!`/`print!` are `drivers`'s: the serial console is `drivers::console`), then `#[macro_export]` macros (to the module that defines
//!   them, also when called bare as `name!`), then `pub use M::…` re-exports in `lib.rs` (to `M`).
//!   Comments, doc comments and string, char and byte literals are skipped.
//! - *allowed*: `B` is `A` itself or in `A`'s row of the table.
//!
//! # The table
//!
//! | module | may use (and always itself) |
//! |---|---|
//! | arch | nothing |
//! | mm | arch |
//! | drivers | arch, mm |
//! | harness | arch, mm, drivers |
//! | zcache | arch, mm, drivers |
//! | zram | arch, mm, drivers, zcache |
//! | swap | arch, mm, drivers, zcache, zram |
//! | fs | arch, mm, drivers, zcache |
//! | init | arch, mm, drivers, harness, zcache, zram, swap, fs |
//! | workload | every module above |
//!
//! # What is reported (each a [`Problem`]; any one fails the lint)
//!
//! | problem | shape of the line |
//! |---|---|
//! | a use the table forbids | `kernel/src/FILE:LINE: module A may not use module B (allowed: …)` |
//! | a top-level module with no row | `kernel/src/FILE: module X is not in the table …` |
//! | `crate::NAME` that names no module and no known root item | `kernel/src/FILE:LINE: crate::NAME is …` |
//! | a glob of the crate root (`use crate::*`) | `kernel/src/FILE:LINE: … hides which modules …` |
//! | a cycle among uses that are allowed and present | `cycle among allowed uses: a → b → a (…)` |
//! | a row that names a module with no row, or a module twice | `table: …` |
//!
//! With the table above a cycle cannot happen (every row names only rows above it); the cycle check
//! runs on the uses actually found, so a later edit of the table that allows one is caught.
//!
//! # Worked example
//!
//! `kernel/src/zcache/frontswap.rs` belongs to `zcache`. Its line 7, `use crate::{mm, workload::demo};`,
//! gives two uses: `zcache → mm` (allowed) and `zcache → workload` (not in zcache's row), reported as
//! `kernel/src/zcache/frontswap.rs:7: module zcache may not use module workload (allowed: arch, mm,
//! drivers)`. A `// crate::swap` comment or a `"crate::swap"` string on line 8 gives nothing.
//!
//! # Contracts
//!
//! - [`check`] reads every `.rs` file under the directory it is given, in file-name order, so its
//!   report is the same on every run; it fails (`Err`) only when a file cannot be read.
//! - It reads tokens, not a syntax tree: it does not expand macros other than as above, follows no
//!   `#[path]` attribute, and takes inline `mod x { … }` blocks into account only for `super`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

/// One row of the table: the modules `module` may use, besides itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub module: &'static str,
    pub may_use: &'static [&'static str],
}

/// Which top-level module of `kernel/src` may use which. A row's modules are all in rows above it, so
/// the table allows no cycle.
pub const TABLE: &[Rule] = &[
    Rule { module: "arch", may_use: &[] },
    Rule { module: "mm", may_use: &["arch"] },
    Rule { module: "drivers", may_use: &["arch", "mm"] },
    Rule { module: "harness", may_use: &["arch", "mm", "drivers"] },
    Rule { module: "zcache", may_use: &["arch", "mm", "drivers"] },
    Rule { module: "zram", may_use: &["arch", "mm", "drivers", "zcache"] },
    Rule { module: "swap", may_use: &["arch", "mm", "drivers", "zcache", "zram"] },
    Rule { module: "fs", may_use: &["arch", "mm", "drivers", "zcache"] },
    Rule { module: "init", may_use: &["arch", "mm", "drivers", "harness", "zcache", "zram", "swap", "fs"] },
    Rule { module: "workload", may_use: &["arch", "mm", "drivers", "harness", "zcache", "zram", "swap", "fs", "init"] },
];

/// Names at the crate root that belong to a module whatever file defines them: the console macros
/// (`#[macro_export]`, so `crate::println!`, `$crate::print!` and a bare `println!` all reach them).
pub const ROOT_ITEMS: &[(&str, &str)] = &[("println", "drivers"), ("print", "drivers")];

/// Files of the crate root: they may use every module and are not checked.
pub const ROOT_FILES: &[&str] = &["lib.rs", "main.rs"];

/// One thing wrong with the tree (or the table). Paths are relative to the checked directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// A row names a module that has no row, or a module has two rows.
    Table { why: String },
    /// `file:line` of module `from` uses module `to`, which `from`'s row does not allow.
    Forbidden { file: PathBuf, line: usize, from: String, to: String, allowed: Vec<String> },
    /// A top-level module (first seen in `file`) has no row in the table, whose rows are `known`.
    UnknownModule { file: PathBuf, module: String, known: Vec<String> },
    /// `crate::name` names no top-level module and no item the checker can place.
    UnknownName { file: PathBuf, line: usize, name: String },
    /// `use crate::*` (or `super::*` at the root): every module at once, which cannot be checked.
    Glob { file: PathBuf, line: usize },
    /// Allowed uses that go round: `modules[0] → modules[1] → … → modules[0]`, with where each is used.
    Cycle { modules: Vec<String>, at: Vec<(PathBuf, usize)> },
}

impl Problem {
    /// The report line, with file paths shown under `shown` (e.g. `kernel/src`).
    pub fn render(&self, shown: &Path) -> String {
        let at = |file: &Path, line: usize| format!("{}:{line}", shown.join(file).display());
        match self {
            Problem::Table { why } => format!("table (xtask/src/archcheck.rs): {why}"),
            Problem::Forbidden { file, line, from, to, allowed } => {
                let allowed = if allowed.is_empty() { "nothing".to_string() } else { allowed.join(", ") };
                format!("{}: module {from} may not use module {to} (allowed: {allowed})", at(file, *line))
            }
            Problem::UnknownModule { file, module, known } => format!(
                "{}: module {module} is not in the table of xtask/src/archcheck.rs (known: {}); add its row",
                shown.join(file).display(),
                known.join(", ")
            ),
            Problem::UnknownName { file, line, name } => format!(
                "{}: crate::{name} is neither a top-level module nor an item the check can place \
                 (name the module it lives in, or add it to ROOT_ITEMS)",
                at(file, *line)
            ),
            Problem::Glob { file, line } => {
                format!("{}: a glob of the crate root hides which modules are used; name them", at(file, *line))
            }
            Problem::Cycle { modules, at: wheres } => {
                let mut s = format!("cycle among allowed uses: {} → {}", modules.join(" → "), modules[0]);
                let uses: Vec<String> = modules
                    .iter()
                    .zip(modules.iter().cycle().skip(1))
                    .zip(wheres)
                    .map(|((a, b), (file, line))| format!("{a} → {b} at {}", at(file, *line)))
                    .collect();
                let _ = write!(s, " ({})", uses.join(", "));
                s
            }
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Sorted: table problems, then by file and line, cycles last.
    pub problems: Vec<Problem>,
    /// `.rs` files read.
    pub files: usize,
    /// Every use between two different modules, with its first place (file, line).
    pub uses: BTreeMap<(String, String), (PathBuf, usize)>,
}

/// Check every `.rs` file under `src` against `table`.
pub fn check(src: &Path, table: &[Rule]) -> Result<Report> {
    let mut report = Report::default();
    report.problems.extend(table_problems(table));
    let sources = read_tree(src)?;
    report.files = sources.len();
    let modules: BTreeSet<String> = sources.iter().filter_map(|s| s.module.clone()).collect();
    let roots = RootNames::new(&sources, &modules, table);
    let rows: BTreeMap<&str, &Rule> = table.iter().map(|r| (r.module, r)).collect();

    let mut unknown_seen = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for source in &sources {
        let Some(module) = &source.module else { continue };
        let row = rows.get(module.as_str());
        if row.is_none() && unknown_seen.insert(module.clone()) {
            report.problems.push(Problem::UnknownModule {
                file: source.rel.clone(),
                module: module.clone(),
                known: table.iter().map(|r| r.module.to_string()).collect(),
            });
        }
        for r in references(&source.tokens, &source.mod_path, &roots.macros) {
            let (name, line) = match r {
                Ref::Glob { line } => {
                    report.problems.push(Problem::Glob { file: source.rel.clone(), line });
                    continue;
                }
                Ref::Root { name, line } => (name, line),
            };
            let to = match roots.resolve(&name) {
                Resolved::Module(to) => to,
                Resolved::Root => continue,
                Resolved::Unknown => {
                    report.problems.push(Problem::UnknownName { file: source.rel.clone(), line, name });
                    continue;
                }
            };
            if &to == module {
                continue;
            }
            report.uses.entry((module.clone(), to.clone())).or_insert_with(|| (source.rel.clone(), line));
            // A module without a row is reported once above, not at each of its uses.
            if let Some(row) = row
                && !row.may_use.contains(&to.as_str())
            {
                forbidden.insert((source.rel.clone(), line, to));
            }
        }
    }
    for (file, line, to) in forbidden {
        let from = sources.iter().find(|s| s.rel == file).and_then(|s| s.module.clone()).unwrap_or_default();
        let allowed = rows[from.as_str()].may_use.iter().map(|m| m.to_string()).collect();
        report.problems.push(Problem::Forbidden { file, line, from, to, allowed });
    }
    report.problems.sort_by_key(|p| match p {
        Problem::Table { .. } => (0, PathBuf::new(), 0),
        Problem::Forbidden { file, line, .. }
        | Problem::UnknownName { file, line, .. }
        | Problem::Glob { file, line } => (1, file.clone(), *line),
        Problem::UnknownModule { file, .. } => (1, file.clone(), 0),
        Problem::Cycle { .. } => (2, PathBuf::new(), 0),
    });
    let allowed_uses: BTreeMap<(String, String), (PathBuf, usize)> = report
        .uses
        .iter()
        .filter(|((a, b), _)| rows.get(a.as_str()).is_some_and(|r| r.may_use.contains(&b.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    report.problems.extend(cycles(&allowed_uses));
    Ok(report)
}

/// The table as text, for `cargo xtask lint --arch-table`.
pub fn render_table(table: &[Rule]) -> String {
    let width = table.iter().map(|r| r.module.len()).max().unwrap_or(0).max("module".len());
    let mut s = format!("{:<width$}  may use (besides itself)\n", "module");
    for r in table {
        let uses = if r.may_use.is_empty() { "nothing".to_string() } else { r.may_use.join(", ") };
        let _ = writeln!(s, "{:<width$}  {uses}", r.module);
    }
    let _ = write!(
        s,
        "root files {} may use every module; {} count as {}",
        ROOT_FILES.join(" and "),
        ROOT_ITEMS.iter().map(|(n, _)| format!("{n}!")).collect::<Vec<_>>().join(" and "),
        ROOT_ITEMS.first().map_or("", |(_, m)| m)
    );
    s
}

fn table_problems(table: &[Rule]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for r in table {
        if !seen.insert(r.module) {
            out.push(Problem::Table { why: format!("module {} has two rows", r.module) });
        }
    }
    for r in table {
        for m in r.may_use {
            if !seen.contains(m) {
                out.push(Problem::Table { why: format!("{} may use {m}, which has no row", r.module) });
            }
        }
    }
    out
}

/// Cycles among `uses`: one per strongly connected set of more than one module, shown as a shortest
/// way round from its first module.
fn cycles(uses: &BTreeMap<(String, String), (PathBuf, usize)>) -> Vec<Problem> {
    let nodes: Vec<&String> = uses.keys().flat_map(|(a, b)| [a, b]).collect::<BTreeSet<_>>().into_iter().collect();
    let index = |m: &String| nodes.iter().position(|n| *n == m).expect("a node of the graph");
    let n = nodes.len();
    let mut reach = vec![vec![false; n]; n];
    for (a, b) in uses.keys() {
        reach[index(a)][index(b)] = true;
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if reach[i][k] && reach[k][j] {
                    reach[i][j] = true;
                }
            }
        }
    }
    let mut done = vec![false; n];
    let mut out = Vec::new();
    for start in 0..n {
        if done[start] || !reach[start][start] {
            continue;
        }
        let members: Vec<usize> = (0..n).filter(|&j| reach[start][j] && reach[j][start]).collect();
        for &m in &members {
            done[m] = true;
        }
        // Breadth-first from `start` inside its set, back to `start`.
        let mut prev = vec![usize::MAX; n];
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(x) = queue.pop_front() {
            for &y in &members {
                if !uses.contains_key(&(nodes[x].clone(), nodes[y].clone())) {
                    continue;
                }
                if y == start {
                    prev[start] = x;
                    break 'search;
                }
                if prev[y] == usize::MAX {
                    prev[y] = x;
                    queue.push_back(y);
                }
            }
        }
        let mut ring = vec![start];
        let mut x = prev[start];
        while x != start {
            ring.push(x);
            x = prev[x];
        }
        ring.reverse();
        ring.rotate_right(1); // start first: start → … → start
        let modules: Vec<String> = ring.iter().map(|&i| nodes[i].clone()).collect();
        let at = modules
            .iter()
            .zip(modules.iter().cycle().skip(1))
            .map(|(a, b)| uses[&(a.clone(), b.clone())].clone())
            .collect();
        out.push(Problem::Cycle { modules, at });
    }
    out
}

/// One file of the tree.
struct Source {
    /// Relative to the checked directory.
    rel: PathBuf,
    /// Its top-level module; `None` for the root files.
    module: Option<String>,
    /// Its module path from the root, e.g. `["arch", "cpu"]` for `arch/cpu.rs` (`mod.rs` adds nothing).
    mod_path: Vec<String>,
    tokens: Vec<Token>,
}

fn read_tree(src: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for entry in WalkDir::new(src).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).expect("walkdir yields paths under its root").to_path_buf();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let stem = |s: &str| s.strip_suffix(".rs").unwrap_or(s).to_string();
        let (module, mod_path) = if parts.len() == 1 && ROOT_FILES.contains(&parts[0].as_str()) {
            (None, Vec::new())
        } else {
            let mut p: Vec<String> = parts[..parts.len() - 1].to_vec();
            let last = stem(&parts[parts.len() - 1]);
            if last != "mod" {
                p.push(last);
            }
            (Some(p[0].clone()), p)
        };
        out.push(Source { rel, module, mod_path, tokens: tokenize(&text) });
    }
    Ok(out)
}

/// How the names directly under `crate::` are placed.
struct RootNames {
    modules: BTreeSet<String>,
    /// Root items, macros and re-exports → their module (`None`: defined in a root file).
    items: BTreeMap<String, Option<String>>,
    /// `#[macro_export]` macros and [`ROOT_ITEMS`]: also reached by a bare `name!`.
    macros: BTreeSet<String>,
}

enum Resolved {
    Module(String),
    Root,
    Unknown,
}

impl RootNames {
    /// The top-level modules are those of the tree and those of the table.
    fn new(sources: &[Source], tree_modules: &BTreeSet<String>, table: &[Rule]) -> Self {
        let mut modules = tree_modules.clone();
        modules.extend(table.iter().map(|r| r.module.to_string()));
        let mut items = BTreeMap::new();
        let mut macros = BTreeSet::new();
        for s in sources {
            let t = &s.tokens;
            for i in 0..t.len() {
                // `#[macro_export] macro_rules! name`, the attribute within the few tokens before.
                if t[i].is_ident("macro_rules") && t.get(i + 1).is_some_and(|x| x.is_punct('!')) {
                    let Some(name) = t.get(i + 2).and_then(Token::ident) else { continue };
                    let exported = t[i.saturating_sub(12)..i]
                        .iter()
                        .rev()
                        .take_while(|x| !x.is_punct(';') && !x.is_punct('}'))
                        .any(|x| x.is_ident("macro_export"));
                    if exported {
                        items.entry(name.to_string()).or_insert_with(|| s.module.clone());
                        macros.insert(name.to_string());
                    } else if s.module.is_none() {
                        items.entry(name.to_string()).or_insert(None);
                    }
                }
                if s.module.is_some() {
                    continue;
                }
                // Items of the root files, and `pub use module::…::name` re-exports.
                const ITEMS: &[&str] = &["fn", "static", "const", "struct", "enum", "type", "trait", "union"];
                if ITEMS.iter().any(|k| t[i].is_ident(k))
                    && let Some(name) = t.get(i + 1).and_then(Token::ident)
                {
                    items.entry(name.to_string()).or_insert(None);
                }
                if t[i].is_ident("use") {
                    for (path, leaf) in use_leaves(t, i + 1) {
                        let first = path.iter().find(|p| !matches!(p.as_str(), "crate" | "self"));
                        if let Some(first) = first.filter(|f| modules.contains(*f)) {
                            items.entry(leaf).or_insert_with(|| Some(first.clone()));
                        }
                    }
                }
            }
        }
        for (name, module) in ROOT_ITEMS {
            items.insert(name.to_string(), Some(module.to_string()));
            macros.insert(name.to_string());
        }
        RootNames { modules, items, macros }
    }

    fn resolve(&self, name: &str) -> Resolved {
        if self.modules.contains(name) {
            return Resolved::Module(name.to_string());
        }
        match self.items.get(name) {
            Some(Some(m)) => Resolved::Module(m.clone()),
            Some(None) => Resolved::Root,
            None => Resolved::Unknown,
        }
    }
}

/// The `(path, bound name)` leaves of the use tree starting at token `i` (up to its `;`).
fn use_leaves(t: &[Token], i: usize) -> Vec<(Vec<String>, String)> {
    fn tree(t: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) -> usize {
        let mut path = prefix.to_vec();
        while i < t.len() {
            if let Some(id) = t[i].ident() {
                path.push(id.to_string());
                i += 1;
            } else if t[i].tok == Tok::PathSep {
                i += 1;
            } else if t[i].is_punct('{') {
                i += 1;
                while i < t.len() && !t[i].is_punct('}') {
                    let next = tree(t, i, &path, out);
                    // A token no leaf starts with (`*`): step over it.
                    i = if next == i { i + 1 } else { next };
                    if i < t.len() && t[i].is_punct(',') {
                        i += 1;
                    }
                }
                return i + 1;
            } else {
                break;
            }
        }
        // `path as alias`: the alias is the last ident pushed after `as`.
        if let Some(pos) = path.iter().rposition(|p| p == "as")
            && pos + 1 < path.len()
        {
            let alias = path[pos + 1].clone();
            path.truncate(pos);
            out.push((path, alias));
        } else if let Some(leaf) = path.last().filter(|_| path.len() > prefix.len()) {
            let leaf = if leaf == "self" { path.get(path.len().wrapping_sub(2)).cloned() } else { Some(leaf.clone()) };
            if let Some(leaf) = leaf {
                out.push((path.clone(), leaf));
            }
        }
        i
    }
    let mut out = Vec::new();
    tree(t, i, &[], &mut out);
    out
}

/// A reference through the crate root found in a file.
#[derive(Debug, PartialEq, Eq)]
enum Ref {
    /// `name` directly under the root, on `line`.
    Root { name: String, line: usize },
    /// `crate::*`.
    Glob { line: usize },
}

/// Every reference through the crate root in `t`, a file at `mod_path`.
fn references(t: &[Token], mod_path: &[String], macros: &BTreeSet<String>) -> Vec<Ref> {
    let mut out = Vec::new();
    // Inline `mod name { … }` blocks: (name, brace depth inside it).
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        let after_sep = i > 0 && t[i - 1].tok == Tok::PathSep;
        if t[i].is_punct('{') {
            depth += 1;
        } else if t[i].is_punct('}') {
            if inline.last() == Some(&depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
        } else if t[i].is_ident("mod")
            && t.get(i + 1).and_then(Token::ident).is_some()
            && t.get(i + 2).is_some_and(|x| x.is_punct('{'))
        {
            inline.push(depth + 1);
        } else if t[i].is_ident("crate") && !after_sep && t.get(i + 1).is_some_and(|x| x.tok == Tok::PathSep) {
            root_names(t, i + 2, &mut out);
            i += 2;
            continue;
        } else if t[i].is_ident("super") && !after_sep {
            // Climb: each `super::` leaves one level; at the root the next name is a top-level one.
            let level = mod_path.len() + inline.len();
            let mut j = i;
            let mut ups = 0;
            while t.get(j).is_some_and(|x| x.is_ident("super")) && t.get(j + 1).is_some_and(|x| x.tok == Tok::PathSep) {
                ups += 1;
                j += 2;
            }
            if ups > 0 && ups >= level {
                root_names(t, j, &mut out);
            }
            i = j.max(i + 1);
            continue;
        } else if let Some(name) = t[i].ident()
            && !after_sep
            && macros.contains(name)
            && t.get(i + 1).is_some_and(|x| x.is_punct('!'))
        {
            out.push(Ref::Root { name: name.to_string(), line: t[i].line });
        }
        i += 1;
    }
    out
}

/// The names just under the root at token `i` (after `crate::`): one name, a glob, or a `{…}` group.
fn root_names(t: &[Token], i: usize, out: &mut Vec<Ref>) {
    let Some(first) = t.get(i) else { return };
    if let Some(name) = first.ident() {
        if name != "self" {
            out.push(Ref::Root { name: name.to_string(), line: first.line });
        }
    } else if first.is_punct('*') {
        out.push(Ref::Glob { line: first.line });
    } else if first.is_punct('{') {
        root_group(t, i, out);
    }
}

/// A `{…}` group at the root whose `{` is at `i`: each item names a top-level module by its first token
/// (`mm::{self, kmap}` names `mm`), or is itself such a group. Returns the index after its `}`.
fn root_group(t: &[Token], mut i: usize, out: &mut Vec<Ref>) -> usize {
    i += 1;
    let mut item_start = true;
    let mut depth = 0; // braces open inside the current item
    while let Some(x) = t.get(i) {
        if item_start {
            item_start = false;
            if x.is_punct('{') {
                i = root_group(t, i, out);
                continue;
            }
            root_names(t, i, out);
        }
        if x.is_punct('{') {
            depth += 1;
        } else if x.is_punct('}') {
            if depth == 0 {
                return i + 1;
            }
            depth -= 1;
        } else if x.is_punct(',') && depth == 0 {
            item_start = true;
        }
        i += 1;
    }
    i
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    fn is_ident(&self, s: &str) -> bool {
        self.ident() == Some(s)
    }

    fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// Rust source → identifiers, `::` and punctuation with their line numbers; comments (nested block
/// comments too), doc comments, strings (raw, byte and C strings too), chars and lifetimes dropped.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let is_ident_start = |ch: char| ch == '_' || ch.is_alphabetic();
    let is_ident = |ch: char| ch == '_' || ch.is_alphanumeric();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted literal whose opening quote is at `i`; returns the index after it.
    let skip_quoted = |mut i: usize, line: &mut usize| {
        i += 1;
        while i < c.len() && c[i] != '"' {
            if c[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    // Skips a raw literal `#…#"…"#…#` whose first `#` or `"` is at `i`.
    let skip_raw = |mut i: usize, line: &mut usize| {
        let mut hashes = 0;
        while at(i) == '#' {
            hashes += 1;
            i += 1;
        }
        i += 1; // the opening quote
        while i < c.len() {
            if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                return i + 1 + hashes;
            }
            if c[i] == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i
    };
    // Is a raw literal (`#`s then `"`) starting at `i`?
    let raw_at = |mut i: usize| {
        while at(i) == '#' {
            i += 1;
        }
        at(i) == '"'
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_quoted(i, &mut line);
        } else if (ch == 'r' && raw_at(i + 1) && (at(i + 1) == '"' || at(i + 1) == '#' && !is_ident_start(at(i + 2))))
            || ((ch == 'b' || ch == 'c') && at(i + 1) == 'r' && raw_at(i + 2))
        {
            let start = if ch == 'r' { i + 1 } else { i + 2 };
            i = skip_raw(start, &mut line);
        } else if (ch == 'b' || ch == 'c') && at(i + 1) == '"' {
            i = skip_quoted(i + 1, &mut line);
        } else if ch == 'b' && at(i + 1) == '\'' {
            i = skip_char(&c, i + 1);
        } else if ch == '\'' {
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = skip_char(&c, i);
            } else {
                // A lifetime or a label: the quote and the name after it.
                i += 1;
                while is_ident(at(i)) {
                    i += 1;
                }
            }
        } else if ch == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            let start = i + 2;
            i = start;
            while is_ident(at(i)) {
                i += 1;
            }
            out.push(Token { tok: Tok::Ident(c[start..i].iter().collect()), line });
        } else if is_ident_start(ch) {
            let start = i;
            while is_ident(at(i)) {
                i += 1;
            }
            out.push(Token { tok: Tok::Ident(c[start..i].iter().collect()), line });
        } else if ch.is_ascii_digit() {
            while is_ident(at(i)) {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token { tok: Tok::PathSep, line });
            i += 2;
        } else {
            out.push(Token { tok: Tok::Punct(ch), line });
            i += 1;
        }
    }
    out
}

/// Skips a char literal whose opening quote is at `i` (`'x'`, `'\n'`, `'\u{1F600}'`, `'\''`).
fn skip_char(c: &[char], mut i: usize) -> usize {
    i += 1;
    if c.get(i) == Some(&'\\') {
        i += 2;
    } else {
        i += 1;
    }
    while i < c.len() && c[i] != '\'' && c[i] != '\n' {
        i += 1;
    }
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory holding `files` (relative path, text).
    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zkernel-archcheck-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// A tree with every module of the table, each using what its row allows, in every syntax the
    /// check knows. `arch` uses nothing: its lines only look like uses (a sibling, itself, a string).
    const CLEAN: &[(&str, &str)] = &[
        ("lib.rs", "pub mod arch;\npub mod mm;\npub use init::BOOT;\nuse crate::workload::x;\n"),
        ("main.rs", "fn main() { zkernel::init::init(); crate::workload::run(); }\n"),
        (
            "drivers/console.rs",
            "#[macro_export]\nmacro_rules! println { () => ($crate::drivers::console::_print()); }\npub fn _print() {}\n",
        ),
        ("arch/mod.rs", "pub mod cpu;\nuse self::cpu::x;\nfn f() -> &'static str { \"crate::mm\" }\n"),
        ("arch/cpu.rs", "use super::cpu2;\nuse super::super::arch::gdt;\n"),
        ("mm/mod.rs", "pub mod frames;\nuse crate::arch::{cpu, gdt};\n"),
        ("mm/frames.rs", "use super::super::arch::paging;\nuse super::Frame;\n"),
        ("drivers/mod.rs", "pub mod console;\nuse crate::{\n    arch,\n    mm::{self, frames},\n};\n"),
        (
            "harness/mod.rs",
            "use crate::arch;\nfn f() -> crate::mm::Frame {\n    println!();\n    crate::mm::frame()\n}\n",
        ),
        ("zcache/mod.rs", "use crate::mm;\nfn f() { crate::println!(); }\n"),
        ("swap/mod.rs", "use crate::{drivers, zcache};\n"),
        ("fs/mod.rs", "use crate::{drivers, zcache::tmem};\n"),
        ("init.rs", "use crate::{fs, swap, harness};\npub static BOOT: u8 = 0;\n"),
        ("workload/mod.rs", "use crate::{init, fs, swap};\nfn f() { let _ = crate::BOOT; }\n"),
    ];

    fn with(name: &str, changes: &[(&str, &str)]) -> PathBuf {
        let mut files: Vec<(&str, &str)> =
            CLEAN.iter().filter(|(p, _)| !changes.iter().any(|c| c.0 == *p)).copied().collect();
        files.extend_from_slice(changes);
        tree(name, &files)
    }

    fn lines(dir: &Path, table: &[Rule]) -> Vec<String> {
        check(dir, table).unwrap().problems.iter().map(|p| p.render(Path::new("kernel/src"))).collect()
    }

    fn first_use(report: &Report, from: &str, to: &str) -> (PathBuf, usize) {
        report.uses[&(from.to_string(), to.to_string())].clone()
    }

    #[test]
    fn a_clean_tree_passes_and_every_use_is_seen() {
        let dir = with("clean", &[]);
        let report = check(&dir, TABLE).unwrap();
        assert_eq!(report.problems, []);
        assert_eq!(report.files, CLEAN.len());
        let uses: Vec<String> = report.uses.keys().map(|(a, b)| format!("{a}>{b}")).collect();
        assert_eq!(
            uses,
            [
                "drivers>arch",
                "drivers>mm",
                "fs>drivers",
                "fs>zcache",
                "harness>arch",
                "harness>drivers",
                "harness>mm",
                "init>fs",
                "init>harness",
                "init>swap",
                "mm>arch",
                "swap>drivers",
                "swap>zcache",
                "workload>fs",
                "workload>init",
                "workload>swap",
                "zcache>drivers",
                "zcache>mm",
            ]
        );
        // `crate::BOOT` is lib.rs's re-export of init's static: workload → init (listed above).
        // The `super::super::` climb in mm/frames.rs (read before mm/mod.rs) reaches the root.
        assert_eq!(first_use(&report, "mm", "arch"), (PathBuf::from("mm/frames.rs"), 1));
        // A bare `println!` and a `crate::println!` are uses of drivers.
        assert_eq!(first_use(&report, "harness", "drivers"), (PathBuf::from("harness/mod.rs"), 3));
        assert_eq!(first_use(&report, "zcache", "drivers"), (PathBuf::from("zcache/mod.rs"), 2));
        // A group over several lines: each module on its own line.
        assert_eq!(first_use(&report, "drivers", "arch"), (PathBuf::from("drivers/mod.rs"), 3));
        assert_eq!(first_use(&report, "drivers", "mm"), (PathBuf::from("drivers/mod.rs"), 4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_planted_use_in_arch_is_caught_with_file_and_line() {
        let dir = with("arch-swap", &[("arch/gdt.rs", "//! GDT.\n\nuse crate::swap::x;\n")]);
        assert_eq!(
            lines(&dir, TABLE),
            ["kernel/src/arch/gdt.rs:3: module arch may not use module swap (allowed: nothing)"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_grouped_use_of_workload_is_caught() {
        let dir = with("grouped", &[("zcache/mod.rs", "use crate::{mm, workload::demo};\n")]);
        assert_eq!(
            lines(&dir, TABLE),
            ["kernel/src/zcache/mod.rs:1: module zcache may not use module workload (allowed: arch, mm, drivers)"]
        );
        // Nested and over several lines: each module on its own line.
        let dir2 = with(
            "grouped2",
            &[(
                "zcache/frontswap.rs",
                "use crate::{\n    mm::{self, kmap},\n    {arch, workload::{demo}},\n    init,\n};\n",
            )],
        );
        assert_eq!(
            lines(&dir2, TABLE),
            [
                "kernel/src/zcache/frontswap.rs:3: module zcache may not use module workload (allowed: arch, mm, drivers)",
                "kernel/src/zcache/frontswap.rs:4: module zcache may not use module init (allowed: arch, mm, drivers)",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }

    #[test]
    fn a_path_in_an_expression_is_caught() {
        let dir = with("expr", &[("mm/heap.rs", "fn grow() {\n    let x = 1;\n    crate::fs::x();\n}\n")]);
        assert_eq!(lines(&dir, TABLE), ["kernel/src/mm/heap.rs:3: module mm may not use module fs (allowed: arch)"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn macros_and_super_reach_the_root_too() {
        let dir = with(
            "macro",
            &[
                (
                    "arch/cpu.rs",
                    "use super::super::init;\nmod inner {\n    use super::super::super::mm;\n}\nfn f() { println!(); }\n",
                ),
                ("arch/port.rs", "macro_rules! p { () => ($crate::mm::x()); }\nfn g() { crate::print!(); }\n"),
                ("arch/trap.rs", "fn h() {\n    zstat!();\n    crate::zstat!();\n}\n"),
                ("zcache/stat.rs", "#[macro_export]\nmacro_rules! zstat { () => (); }\n"),
            ],
        );
        // The console macros are drivers's wherever they are called from; an exported macro belongs
        // to the module that defines it, called bare or through `crate::`.
        assert_eq!(
            lines(&dir, TABLE),
            [
                "kernel/src/arch/cpu.rs:1: module arch may not use module init (allowed: nothing)",
                "kernel/src/arch/cpu.rs:3: module arch may not use module mm (allowed: nothing)",
                "kernel/src/arch/cpu.rs:5: module arch may not use module drivers (allowed: nothing)",
                "kernel/src/arch/port.rs:1: module arch may not use module mm (allowed: nothing)",
                "kernel/src/arch/port.rs:2: module arch may not use module drivers (allowed: nothing)",
                "kernel/src/arch/trap.rs:2: module arch may not use module zcache (allowed: nothing)",
                "kernel/src/arch/trap.rs:3: module arch may not use module zcache (allowed: nothing)",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn comments_and_strings_are_not_uses() {
        let text = r####"//! Unlike crate::swap, mm stays low.
/// See [`crate::fs::x`].
// use crate::workload;
/* use crate::init; /* nested crate::fs */ still a comment crate::fs */
fn f() -> &'static str {
    let _c = '"';
    let _q = '\'';
    let _b = b"crate::fs";
    let _r = r#"use crate::swap; "quoted" "#;
    let _s = "use crate::{swap, fs}; \" println!() crate::init";
    'outer: loop { break 'outer; }
    "crate::swap"
}
use crate::arch;
"####;
        // mm/alloc.rs is read first of mm's files, so the use on its line 14 is mm's first use of arch.
        let dir = with("comments", &[("mm/alloc.rs", text)]);
        let report = check(&dir, TABLE).unwrap();
        assert_eq!(report.problems, []);
        assert_eq!(first_use(&report, "mm", "arch"), (PathBuf::from("mm/alloc.rs"), 14));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unknown_module_is_caught() {
        let dir = with("unknown", &[("pooldemo.rs", "use crate::mm;\nuse crate::zcache;\n")]);
        assert_eq!(
            lines(&dir, TABLE),
            ["kernel/src/pooldemo.rs: module pooldemo is not in the table of xtask/src/archcheck.rs (known: arch, \
                 mm, drivers, harness, zcache, zram, swap, fs, init, workload); add its row"]
        );
        // Using it from a module is forbidden too, and a root name nobody defines is reported.
        let dir2 =
            with("unknown2", &[("pooldemo.rs", ""), ("fs/mod.rs", "use crate::pooldemo;\nuse crate::nothing;\n")]);
        assert_eq!(
            lines(&dir2, TABLE),
            [
                "kernel/src/fs/mod.rs:1: module fs may not use module pooldemo (allowed: arch, mm, drivers, zcache)",
                "kernel/src/fs/mod.rs:2: crate::nothing is neither a top-level module nor an item the check can \
                 place (name the module it lives in, or add it to ROOT_ITEMS)",
                "kernel/src/pooldemo.rs: module pooldemo is not in the table of xtask/src/archcheck.rs (known: arch, \
                 mm, drivers, harness, zcache, zram, swap, fs, init, workload); add its row",
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }

    #[test]
    fn a_glob_of_the_root_is_caught() {
        let dir = with("glob", &[("fs/mod.rs", "use crate::*;\n"), ("fs/cache.rs", "mod t { use super::*; }\n")]);
        // `super::*` in fs/cache.rs's inline module is fs::cache, not the root: fine.
        assert_eq!(
            lines(&dir, TABLE),
            ["kernel/src/fs/mod.rs:1: a glob of the crate root hides which modules are used; name them"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_table_that_allows_a_cycle_is_caught_where_the_uses_close_it() {
        let mut table: Vec<Rule> = TABLE.to_vec();
        let zcache = table.iter_mut().find(|r| r.module == "zcache").unwrap();
        zcache.may_use = &["arch", "mm", "drivers", "fs"];
        let dir = with("cycle", &[("zcache/mod.rs", "use crate::mm;\n\nfn f() { crate::fs::read(); }\n")]);
        assert_eq!(
            lines(&dir, &table),
            ["cycle among allowed uses: fs → zcache → fs (fs → zcache at kernel/src/fs/mod.rs:1, \
              zcache → fs at kernel/src/zcache/mod.rs:3)"]
        );
        // The same edit without the use that closes it: no cycle to report.
        let dir2 = with("nocycle", &[]);
        assert_eq!(lines(&dir2, &table), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }

    #[test]
    fn the_table_itself_is_checked() {
        assert_eq!(table_problems(TABLE), []);
        let bad = [Rule { module: "a", may_use: &["b"] }, Rule { module: "a", may_use: &[] }];
        let why: Vec<String> = table_problems(&bad).iter().map(|p| p.render(Path::new(""))).collect();
        assert_eq!(
            why,
            [
                "table (xtask/src/archcheck.rs): module a has two rows",
                "table (xtask/src/archcheck.rs): a may use b, which has no row"
            ]
        );
        // Every row names only rows above it, so the table allows no cycle.
        for (i, r) in TABLE.iter().enumerate() {
            for m in r.may_use {
                assert!(TABLE[..i].iter().any(|above| above.module == *m), "{} → {m}", r.module);
            }
        }
    }

    #[test]
    fn the_table_prints_one_row_per_module() {
        let text = render_table(TABLE);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows,
            [
                "module    may use (besides itself)",
                "arch      nothing",
                "mm        arch",
                "drivers   arch, mm",
                "harness   arch, mm, drivers",
                "zcache    arch, mm, drivers",
                "zram      arch, mm, drivers, zcache",
                "swap      arch, mm, drivers, zcache, zram",
                "fs        arch, mm, drivers, zcache",
                "init      arch, mm, drivers, harness, zcache, zram, swap, fs",
                "workload  arch, mm, drivers, harness, zcache, zram, swap, fs, init",
                "root files lib.rs and main.rs may use every module; println! and print! count as drivers",
            ]
        );
        assert_eq!(rows.len(), TABLE.len() + 2);
    }

    #[test]
    fn tokens_keep_their_lines() {
        let t = tokenize("a /* x\ny */ b\n\"s\nt\" c r#type");
        let got: Vec<(String, usize)> = t.iter().map(|t| (t.ident().unwrap().to_string(), t.line)).collect();
        assert_eq!(got, [("a".into(), 1), ("b".into(), 2), ("c".into(), 4), ("type".into(), 4)]);
    }
}
