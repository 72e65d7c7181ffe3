//! `cargo xtask drawings`: the book's drawings, from Graphviz sources to committed SVGs.
//!
//! Each drawing is a text source `docs/drawings/NAME.dot`; `cargo xtask drawings` runs Graphviz's
//! `dot -Tsvg` on it and writes `docs/drawings/NAME.svg`, with one comment line after the XML header
//! that names the source and its FNV-1a 64:
//!
//! ```text
//! <!-- rendered by `cargo xtask drawings` from journey.dot, source FNV-1a 0123456789abcdef -->
//! ```
//!
//! The SVGs are committed, so readers and CI need no Graphviz. `cargo xtask drawings --check` (and the
//! host test `the_committed_drawings_match_their_sources`, part of `cargo xtask test`) needs none either:
//! it fails when a source has no SVG, an SVG has no source, or a source changed since its SVG was
//! rendered. Graphviz comes from Debian's `graphviz` package (`apt-get install -y graphviz`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The drawings' folder, relative to the workspace root.
pub const DIR: &str = "docs/drawings";

#[derive(clap::Args, Clone, Debug)]
pub struct DrawingsOpts {
    /// Render nothing: check that every committed SVG was rendered from its source as it is now.
    #[arg(long)]
    check: bool,
}

pub fn drawings(o: &DrawingsOpts) -> Result<std::process::ExitCode> {
    let dir = crate::cargo::workspace_root().join(DIR);
    if o.check {
        let n = check(&dir)?;
        println!("drawings: {n} SVGs match their sources in {DIR}");
    } else {
        for src in sources(&dir)? {
            let svg = render(&src)?;
            println!("drawings: {} → {}", name(&src), name(&svg));
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The `.dot` sources of `dir`, sorted.
fn sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dot"))
        .collect();
    v.sort();
    Ok(v)
}

/// The comment line that ties an SVG to its source.
pub fn stamp(source_name: &str, source: &[u8]) -> String {
    format!(
        "<!-- rendered by `cargo xtask drawings` from {source_name}, source FNV-1a {:016x} -->",
        fnv1a::fnv1a64(source)
    )
}

/// Render one source with `dot -Tsvg`; returns the SVG's path.
fn render(src: &Path) -> Result<PathBuf> {
    let source = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    let out = Command::new("dot").arg("-Tsvg").arg(src).output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("Graphviz's `dot` is not installed: run `apt-get install -y graphviz` (Debian), then again")
        }
        Err(e) => return Err(e).context("running dot"),
    };
    if !out.status.success() {
        bail!("dot failed on {}: {}", src.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let svg = String::from_utf8(out.stdout).context("dot wrote an SVG that is not UTF-8")?;
    let svg = insert_stamp(&svg, &stamp(&name(src), &source));
    let path = src.with_extension("svg");
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The SVG with `stamp` as a line after its XML declaration (or first, without one).
fn insert_stamp(svg: &str, stamp: &str) -> String {
    match svg.split_once('\n') {
        Some((first, rest)) if first.starts_with("<?xml") => format!("{first}\n{stamp}\n{rest}"),
        _ => format!("{stamp}\n{svg}"),
    }
}

/// Check every drawing of `dir` without Graphviz; returns how many were checked.
pub fn check(dir: &Path) -> Result<usize> {
    let srcs = sources(dir)?;
    let mut problems = Vec::new();
    for src in &srcs {
        let source = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        let want = stamp(&name(src), &source);
        let svg_path = src.with_extension("svg");
        match std::fs::read_to_string(&svg_path) {
            Err(_) => problems.push(format!("{}: no {} (run `cargo xtask drawings`)", name(src), name(&svg_path))),
            Ok(svg) if !svg.lines().take(3).any(|l| l == want) => problems.push(format!(
                "{}: changed since {} was rendered (run `cargo xtask drawings` and commit both)",
                name(src),
                name(&svg_path)
            )),
            Ok(_) => {}
        }
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "svg") && !p.with_extension("dot").exists() {
            problems.push(format!("{}: no source {}", name(&p), name(&p.with_extension("dot"))));
        }
    }
    if !problems.is_empty() {
        bail!("{} drawing(s) out of date in {DIR}: {}", problems.len(), problems.join("; "));
    }
    Ok(srcs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_drawings_match_their_sources() {
        let n = check(&crate::cargo::workspace_root().join(DIR)).unwrap();
        assert!(n >= 6, "the journey and the five mechanism drawings, found {n}");
    }

    #[test]
    fn a_changed_source_or_a_missing_svg_is_reported() {
        let dir = std::env::temp_dir().join(format!("zkernel-drawings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.dot"), "digraph a {}").unwrap();
        let svg = insert_stamp("<?xml version=\"1.0\"?>\n<svg/>\n", &stamp("a.dot", b"digraph a {}"));
        std::fs::write(dir.join("a.svg"), &svg).unwrap();
        assert_eq!(check(&dir).unwrap(), 1);
        std::fs::write(dir.join("a.dot"), "digraph a { x }").unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(e.contains("a.dot: changed since a.svg was rendered"), "{e}");
        std::fs::write(dir.join("b.dot"), "digraph b {}").unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(e.contains("b.dot: no b.svg"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
