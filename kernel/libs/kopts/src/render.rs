//! The option table as text: the README's markdown table and `cargo xtask run --help-kernel`'s lines.
//!
//! # Why
//!
//! Documentation written by hand next to a table drifts from it. Both texts here are generated from
//! [`OPTIONS`], and a host test compares the README's section (between the markers
//! `<!-- kopts:begin -->` and `<!-- kopts:end -->`) with [`markdown_table`], so a changed option fails the
//! tests until the README shows it.
//!
//! # Vocabulary
//!
//! | column | from |
//! |---|---|
//! | option | `key` |
//! | accepted | `kind`: the words (`a` \| `b`), the range `min..=max`, or `16 hex digits` |
//! | default | `kind`'s default: a value, or the text of a derived or off default |
//! | used by | `used_by`: `every kernel, at boot`, the workloads, or `test kernels only` |
//! | meaning | `help` |
//!
//! # Worked example
//!
//! The row of `deflate_level` renders as
//!
//! ```text
//! | `deflate_level` | `1..=10` | `1` | pools, swap, files, all | deflate level when compressor=deflate (10 is miniz_oxide's slowest) |
//! ```
//!
//! and in the help text as
//!
//! ```text
//!   deflate_level=1..=10  (default 1; pools, swap, files, all)
//!       deflate level when compressor=deflate (10 is miniz_oxide's slowest)
//! ```
//!
//! # Contracts
//!
//! - Both functions are pure: the same table gives the same text. A `|` inside a cell is escaped.
//! - `markdown_table` ends with a newline and has one row per option, in table order.

use alloc::string::String;
use core::fmt::Write;

use crate::error::{Accepted, DefaultText};
use crate::table::{Kind, NumberDefault, OPTIONS, UsedBy};

/// Markers around the generated table in README.md.
pub const README_BEGIN: &str = "<!-- kopts:begin -->";
pub const README_END: &str = "<!-- kopts:end -->";

fn used_by(u: UsedBy) -> String {
    match u {
        UsedBy::Boot => String::from("every kernel, at boot"),
        UsedBy::TestKernels => String::from("test kernels only"),
        UsedBy::Workloads(ws) => {
            let mut s = String::new();
            for (i, w) in ws.iter().enumerate() {
                s.push_str(if i > 0 { ", " } else { "" });
                s.push_str(w.name());
            }
            s
        }
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The option table in markdown: option | accepted | default | used by | meaning.
pub fn markdown_table() -> String {
    let mut s = String::from("| option | accepted | default | used by | meaning |\n|---|---|---|---|---|\n");
    for o in OPTIONS {
        let accepted = match o.kind {
            Kind::Enum { values, .. } => {
                let words: alloc::vec::Vec<String> = values.iter().map(|v| alloc::format!("`{v}`")).collect();
                words.join(" \\| ")
            }
            Kind::Number { min, max, .. } => alloc::format!("`{min}..={max}`"),
            Kind::Hex64 => String::from("16 hex digits"),
            Kind::Trace => String::from("`off` \\| `page:N` \\| `file:N`"),
        };
        let default = match o.kind {
            Kind::Enum { default, .. } => alloc::format!("`{default}`"),
            Kind::Number { default: NumberDefault::Value(v), .. } => alloc::format!("`{v}`"),
            Kind::Number { default: NumberDefault::Derived(t) | NumberDefault::Off(t), .. } => cell(t),
            Kind::Hex64 => String::from("none"),
            Kind::Trace => String::from("`off`"),
        };
        let _ = writeln!(s, "| `{}` | {accepted} | {default} | {} | {} |", o.key, used_by(o.used_by), cell(o.help));
    }
    s
}

/// The option table as plain text for a terminal: per option a `key=accepted (default …; used by)`
/// line and an indented help line.
pub fn help_text() -> String {
    let mut s = String::from(
        "Kernel options (cargo xtask run -- key=value ...). Every option is checked before the kernel runs;\n\
         a repeated option: the last one counts.\n",
    );
    for o in OPTIONS {
        let _ = writeln!(s, "  {}={}  (default {}; {})", o.key, Accepted(o), DefaultText(o), used_by(o.used_by));
        let _ = writeln!(s, "      {}", o.help);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_rows_follow_the_table() {
        let t = markdown_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), OPTIONS.len() + 2);
        assert!(t.ends_with('\n'));
        for (line, o) in lines[2..].iter().zip(OPTIONS) {
            assert!(line.starts_with(&format!("| `{}` |", o.key)), "{line}");
            assert_eq!(line.matches(" | ").count(), 4, "five cells: {line}");
        }
        assert_eq!(
            lines[2 + OPTIONS.iter().position(|o| o.key == "deflate_level").unwrap()],
            "| `deflate_level` | `1..=10` | `1` | pools, swap, files, all, sweep, soak, shell | deflate level when \
             compressor=deflate (10 is miniz_oxide's slowest) |"
        );
        assert!(t.contains("| `memmap` | `summary` \\| `full` | `summary` | every kernel, at boot |"));
        assert!(t.contains("| `corrupt_stored` | `1..=1000000000` | off | pools |"));
    }

    #[test]
    fn help_text_has_two_lines_per_option() {
        let t = help_text();
        assert_eq!(t.lines().count(), 2 + 2 * OPTIONS.len());
        assert!(t.contains(
            "\n  deflate_level=1..=10  (default 1; pools, swap, files, all, sweep, soak, shell)\n      deflate level"
        ));
        assert!(t.contains("\n  loglevel=error|warn|info|debug|trace  (default info; every kernel, at boot)\n"));
        assert!(t.contains("\n  ramdisk_fnv=16 hex digits  (default none; every kernel, at boot)\n"));
        assert!(t.contains("\n  swap_accesses=0..=4294967296  (default 4 x swap region; swap, all, sweep, shell)\n"));
    }

    /// The README's option section must be exactly the generated table. A README without the markers
    /// fails too: the section is required, not optional.
    #[test]
    fn readme_shows_the_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let want = markdown_table();
        let Some((_, rest)) = readme.split_once(&format!("{README_BEGIN}\n")) else {
            panic!(
                "README.md has no line {README_BEGIN}; put this table between {README_BEGIN} and {README_END}:\n{want}"
            )
        };
        let Some((section, _)) = rest.split_once(README_END) else {
            panic!("README.md has {README_BEGIN} but no {README_END} after it")
        };
        assert!(section == want, "README.md's option table is stale; replace it with:\n{want}");
    }
}
