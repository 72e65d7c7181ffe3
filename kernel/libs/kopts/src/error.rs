//! Why an option string was refused: one typed error per bad option, each printing one line that names
//! the option, the value given and what is accepted.
//!
//! # Why
//!
//! A kernel option that is silently replaced by its default turns a typo into a wrong experiment that
//! looks right (`swap_mem=1O24` ran with 1024, `tmem=zbd` ran zsmalloc). So every bad option is an
//! error before anything runs, on the host (xtask) and in the kernel, with the same words.
//!
//! # Vocabulary
//!
//! | variant | when | example |
//! |---|---|---|
//! | [`BadKey`](OptionError::BadKey) | the key is empty or has a character outside `[a-z0-9_.-]` | `=5`, `Swap=1` |
//! | [`UnknownKey`](OptionError::UnknownKey) | a well-formed key that is not in the table | `swap_mme=5` |
//! | [`MissingValue`](OptionError::MissingValue) | a bare `key` or `key=` | `loglevel` |
//! | [`NotANumber`](OptionError::NotANumber) | anything but decimal digits for a number | `swap_mem=1k`, `+5`, `0x10` |
//! | [`Negative`](OptionError::Negative) | `-` and digits for a number | `swap_mem=-1` |
//! | [`Overflow`](OptionError::Overflow) | digits beyond `u64::MAX` | `swap_mem=99999999999999999999` |
//! | [`OutOfRange`](OptionError::OutOfRange) | a `u64` outside the option's `min..=max` | `deflate_level=11` |
//! | [`NotOneOf`](OptionError::NotOneOf) | a word not in the option's list | `tmem=zbd` |
//! | [`BadHex`](OptionError::BadHex) | not exactly 16 hex digits | `ramdisk_fnv=abc` |
//! | [`BadTrace`](OptionError::BadTrace) | not `off`, `page:N` or `file:N` | `trace=page` |
//! | [`Conflict`](OptionError::Conflict) | a value another option rules out | `swap_pattern=all` with `workload=all` |
//! | [`DerivedOverflow`](OptionError::DerivedOverflow) | a value computed from options leaves its limit | `swap_mem=1048576 swap_factor=65` |
//!
//! # Worked example
//!
//! `swap_mem=abc` gives `NotANumber { option: <swap_mem row>, value: "abc" }`, which prints
//!
//! ```text
//! option swap_mem=abc: not a number (accepted: 1..=1048576, default 1024)
//! ```
//!
//! # Contracts
//!
//! - Errors borrow the option string (`'a`) and the table (`'static`); they are `Copy` and never allocate.
//! - `Display` writes exactly one line, without a trailing newline.

use core::fmt;

use crate::table::{Kind, NumberDefault, OPTIONS, OptionSpec};

/// Why one option (or a combination of options) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionError<'a> {
    /// The whole word, whose key is empty or not `[a-z0-9_.-]+`.
    BadKey {
        word: &'a str,
    },
    /// A well-formed key the table does not have; `suggestion` is the nearest known key (at most two
    /// edits away), if any.
    UnknownKey {
        key: &'a str,
        value: Option<&'a str>,
        suggestion: Option<&'static str>,
    },
    /// `key` without `=value`, or with an empty value.
    MissingValue {
        option: &'static OptionSpec,
    },
    NotANumber {
        option: &'static OptionSpec,
        value: &'a str,
    },
    Negative {
        option: &'static OptionSpec,
        value: &'a str,
    },
    /// Decimal digits whose value does not fit in a `u64`.
    Overflow {
        option: &'static OptionSpec,
        value: &'a str,
    },
    OutOfRange {
        option: &'static OptionSpec,
        value: u64,
        min: u64,
        max: u64,
    },
    NotOneOf {
        option: &'static OptionSpec,
        value: &'a str,
        values: &'static [&'static str],
    },
    BadHex {
        option: &'static OptionSpec,
        value: &'a str,
    },
    BadTrace {
        option: &'static OptionSpec,
        value: &'a str,
    },
    /// `option=value` is refused because of `with` (another option's setting); `accepted` says what is
    /// accepted there.
    Conflict {
        option: &'static OptionSpec,
        value: &'a str,
        with: &'static str,
        accepted: &'static str,
    },
    /// `what`, computed as `formula` from `operands`, is above `max` (or does not fit in a `u64`).
    DerivedOverflow {
        what: &'static str,
        formula: &'static str,
        operands: [u64; 2],
        max: u64,
    },
}

impl OptionError<'_> {
    /// The key the error is about (for `DerivedOverflow`, the formula naming the keys).
    pub fn key(&self) -> &str {
        match *self {
            OptionError::BadKey { word } => word.split_once('=').map_or(word, |(k, _)| k),
            OptionError::UnknownKey { key, .. } => key,
            OptionError::MissingValue { option }
            | OptionError::NotANumber { option, .. }
            | OptionError::Negative { option, .. }
            | OptionError::Overflow { option, .. }
            | OptionError::OutOfRange { option, .. }
            | OptionError::NotOneOf { option, .. }
            | OptionError::BadHex { option, .. }
            | OptionError::BadTrace { option, .. }
            | OptionError::Conflict { option, .. } => option.key,
            OptionError::DerivedOverflow { formula, .. } => formula,
        }
    }
}

/// What an option accepts, as `--help-kernel` and the error messages write it: `1..=10`,
/// `error|warn|info`, `16 hex digits`.
#[derive(Debug, Clone, Copy)]
pub struct Accepted<'s>(pub &'s OptionSpec);

impl fmt::Display for Accepted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::Enum { values, .. } => write_list(f, values, "|"),
            Kind::Number { min, max, .. } => write!(f, "{min}..={max}"),
            Kind::Hex64 => f.write_str("16 hex digits"),
            Kind::Trace => f.write_str("off|page:N|file:N"),
        }
    }
}

/// An option's default as text: `1024`, `info`, `4 x swap region`, `none`.
#[derive(Debug, Clone, Copy)]
pub struct DefaultText<'s>(pub &'s OptionSpec);

impl fmt::Display for DefaultText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::Enum { default, .. } => f.write_str(default),
            Kind::Number { default: NumberDefault::Value(v), .. } => write!(f, "{v}"),
            Kind::Number { default: NumberDefault::Derived(t) | NumberDefault::Off(t), .. } => f.write_str(t),
            Kind::Hex64 => f.write_str("none"),
            Kind::Trace => f.write_str("off"),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[&str], sep: &str) -> fmt::Result {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        f.write_str(v)?;
    }
    Ok(())
}

/// `(accepted: 1..=1048576, default 1024)`
fn accepted(f: &mut fmt::Formatter<'_>, o: &OptionSpec) -> fmt::Result {
    write!(f, " (accepted: {}, default {})", Accepted(o), DefaultText(o))
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OptionError::BadKey { word } => {
                write!(f, "option {word}: bad key (accepted: key=value, the key of a-z 0-9 _ . -)")
            }
            OptionError::UnknownKey { key, value, suggestion } => {
                write!(f, "option {key}")?;
                if let Some(v) = value {
                    write!(f, "={v}")?;
                }
                match suggestion {
                    Some(s) => write!(f, ": unknown option (did you mean {s}?)"),
                    None => {
                        f.write_str(": unknown option (accepted: ")?;
                        for (i, o) in OPTIONS.iter().enumerate() {
                            f.write_str(if i > 0 { ", " } else { "" })?;
                            f.write_str(o.key)?;
                        }
                        f.write_str(")")
                    }
                }
            }
            OptionError::MissingValue { option } => {
                write!(f, "option {}: missing value", option.key)?;
                accepted(f, option)
            }
            OptionError::NotANumber { option, value } => {
                write!(f, "option {}={value}: not a number", option.key)?;
                accepted(f, option)
            }
            OptionError::Negative { option, value } => {
                write!(f, "option {}={value}: negative", option.key)?;
                accepted(f, option)
            }
            OptionError::Overflow { option, value } => {
                write!(f, "option {}={value}: does not fit in 64 bits", option.key)?;
                accepted(f, option)
            }
            OptionError::OutOfRange { option, value, min, max } => {
                let (key, default) = (option.key, DefaultText(option));
                write!(f, "option {key}={value}: out of range (accepted: {min}..={max}, default {default})")
            }
            OptionError::NotOneOf { option, value, values } => {
                write!(f, "option {}={value}: not one of the values (accepted: ", option.key)?;
                write_list(f, values, "|")?;
                write!(f, ", default {})", DefaultText(option))
            }
            OptionError::BadHex { option, value } => {
                write!(f, "option {}={value}: not 16 hex digits", option.key)?;
                accepted(f, option)
            }
            OptionError::BadTrace { option, value } => {
                write!(f, "option {}={value}: not off, page:N or file:N with N a decimal number", option.key)?;
                accepted(f, option)
            }
            OptionError::Conflict { option, value, with, accepted } => {
                write!(f, "option {}={value}: not with {with} (accepted there: {accepted})", option.key)
            }
            OptionError::DerivedOverflow { what, formula, operands: [a, b], max } => {
                write!(f, "options {formula} = {a} x {b}: {what} above {max} (accepted: a product of at most {max})")
            }
        }
    }
}

/// The known key nearest to `key` by edit distance, if it is at most two edits away (a typo).
pub(crate) fn suggest(key: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .filter_map(|o| edit_distance(key.as_bytes(), o.key.as_bytes()).map(|d| (d, o.key)))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insert, delete, substitute, each 1), or `None` when `b` is too long for the
/// fixed row (keys are short; no allocation).
fn edit_distance(a: &[u8], b: &[u8]) -> Option<usize> {
    const ROW: usize = 64;
    if b.len() >= ROW {
        return None;
    }
    let mut prev = [0usize; ROW];
    let mut cur = [0usize; ROW];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    Some(prev[b.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_typos() {
        assert_eq!(edit_distance(b"swap_mem", b"swap_mem"), Some(0));
        assert_eq!(edit_distance(b"swap_mme", b"swap_mem"), Some(2));
        assert_eq!(edit_distance(b"swapmem", b"swap_mem"), Some(1));
        assert_eq!(edit_distance(b"", b"tmem"), Some(4));
        assert_eq!(edit_distance(b"tmem", b""), Some(4));
        assert_eq!(edit_distance(b"a", &[b'a'; 64]), None);
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        assert_eq!(suggest("swap_mme"), Some("swap_mem"));
        assert_eq!(suggest("loglevl"), Some("loglevel"));
        assert_eq!(suggest("frobnicate"), None);
    }
}
