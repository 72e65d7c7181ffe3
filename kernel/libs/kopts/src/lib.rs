//! Kernel options: how `cargo xtask run -- key=value …` reaches the kernel, and how the kernel reads it.
//!
//! # Why
//!
//! A unikernel has no command line of its own. xtask hands QEMU the options as a *fw_cfg file*
//! (`-fw_cfg name=opt/zkernel/cmdline,string=…`), QEMU's firmware configuration device that a guest reads
//! through two I/O ports. The port I/O lives in the kernel (`kernel/src/drivers/fw_cfg.rs`); the byte
//! formats and the option grammar live here, `no_std` and without `unsafe`, so the host tests cover them.
//!
//! # fw_cfg file directory (QEMU docs/specs/fw_cfg.rst)
//!
//! Selecting key `0x0019` yields a big-endian `u32` count followed by that many 64-byte entries:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | size of the file in bytes, big-endian |
//! | 4 | 2 | selector key to read it with, big-endian |
//! | 6 | 2 | reserved |
//! | 8 | 56 | name, NUL-terminated |
//!
//! # Option grammar
//!
//! Options are separated by white space; each is `key=value`. Keys are `[a-z0-9_.-]+`. Every option is
//! a row of the one option table [`OPTIONS`] (`table.rs`: its values or range, default, who reads it,
//! help). [`Settings::parse`] (`settings.rs`) checks the whole string against it before anything runs
//! and returns typed values, or one [`OptionError`] (`error.rs`) per bad option; the typed words are in
//! `choices.rs`; the README table and `--help-kernel` are rendered from the table (`render.rs`).
//!
//! Example: `loglevel=debug memmap=full` → `Settings` with `loglevel() == LogLevel::Debug`,
//! `memmap() == MemMap::Full`, every other option at its default.
//!
//! The older [`Options`] reader (`get`, `number`) is kept until the kernel uses [`Settings`]; its
//! [`KNOWN`] list is now derived from [`OPTIONS`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod choices;
mod error;
mod render;
mod settings;
#[cfg(test)]
mod settings_tests;
mod table;

pub use choices::{
    Backend, BlkFailKind, BlkFailOp, Compressor, EphemeralReclaim, FailSchedule, LogLevel, MemMap, SwapCacheMode,
    SwapDevice, SwapMode, SwapPattern, SwapSharing, TmemBackends, Workload,
};
pub use error::{Accepted, DefaultText, OptionError};
pub use render::{README_BEGIN, README_END, help_text, markdown_table};
pub use settings::{
    SWAP_ACCESSES_PER_REGION_PAGE, Settings, TMEM_POOL_PERCENT_DEFAULT, TMEM_POOL_PERCENT_DEFAULT_ALL, Trace, Value,
    check_value, check_word,
};
pub use table::{Kind, NumberDefault, OPTIONS, OptionSpec, SWAP_REGION_MAX_PAGES, UsedBy, spec};

/// fw_cfg key of the 4-byte signature `QEMU`.
pub const FW_CFG_SIGNATURE: u16 = 0x0000;
/// fw_cfg key of the CPU count QEMU was started with (`-smp N`), a little-endian `u16`.
pub const FW_CFG_NB_CPUS: u16 = 0x0005;
/// fw_cfg key of the file directory.
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
/// The fw_cfg file that carries the kernel options.
pub const OPTIONS_FILE: &str = "opt/zkernel/cmdline";
/// Size of one file-directory entry.
pub const DIR_ENTRY_LEN: usize = 64;

/// One entry of the fw_cfg file directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwCfgFile {
    pub size: u32,
    pub select: u16,
    name: [u8; 56],
}

impl FwCfgFile {
    /// Decode one 64-byte directory entry.
    pub fn parse(entry: &[u8; DIR_ENTRY_LEN]) -> Self {
        let mut name = [0; 56];
        name.copy_from_slice(&entry[8..]);
        Self {
            size: u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]),
            select: u16::from_be_bytes([entry[4], entry[5]]),
            name,
        }
    }

    /// The file name up to its first NUL; a name that is not UTF-8 reads as `""`.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }
}

/// Decode the directory's leading count.
pub fn dir_count(bytes: [u8; 4]) -> u32 {
    u32::from_be_bytes(bytes)
}

/// A key the kernel understands, with the line `cargo xtask run --help-kernel` and the docs print.
#[derive(Debug, Clone, Copy)]
pub struct KnownOption {
    pub key: &'static str,
    pub values: &'static [&'static str],
    pub help: &'static str,
}

/// Every option the kernel reads, for the [`Options`] reader: the rows of [`OPTIONS`] with their words
/// (`values` is empty for numbers and hex, which this reader takes as free-form).
pub const KNOWN: &[KnownOption] = &KNOWN_ROWS;

const KNOWN_ROWS: [KnownOption; OPTIONS.len()] = {
    let mut rows = [KnownOption { key: "", values: &[], help: "" }; OPTIONS.len()];
    let mut i = 0;
    while i < OPTIONS.len() {
        let o = &OPTIONS[i];
        let values = match o.kind {
            Kind::Enum { values, .. } => values,
            Kind::Number { .. } | Kind::Hex64 | Kind::Trace => &[],
        };
        rows[i] = KnownOption { key: o.key, values, help: o.help };
        i += 1;
    }
    rows
};

/// One parsed option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

/// Why an option was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptError<'a> {
    /// `=value` with nothing before the `=`.
    EmptyKey(&'a str),
    /// A key with characters outside `[a-z0-9_.-]`.
    BadKey(&'a str),
    /// A key not in [`KNOWN`].
    Unknown(&'a str),
    /// A known key with a value it does not take.
    BadValue { key: &'a str, value: &'a str },
}

/// The options string as QEMU delivered it (possibly with a trailing NUL or newline).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    raw: &'a str,
}

impl<'a> Options<'a> {
    pub fn new(raw: &'a str) -> Self {
        Self { raw: raw.trim_end_matches('\0') }
    }

    /// Every option in order, each parsed on its own.
    pub fn iter(&self) -> impl Iterator<Item = Result<Opt<'a>, OptError<'a>>> + 'a {
        self.raw.split_whitespace().map(parse_one)
    }

    /// True when no option was given.
    pub fn is_empty(&self) -> bool {
        self.raw.trim().is_empty()
    }

    /// The value of the last valid occurrence of `key` (later options override earlier ones).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().filter_map(Result::ok).filter(|o| o.key == key).last().and_then(|o| o.value)
    }

    /// The value of `key` as a number, or `default` when it is absent or not a number.
    pub fn number(&self, key: &str, default: u64) -> u64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

fn parse_one(word: &str) -> Result<Opt<'_>, OptError<'_>> {
    let (key, value) = match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    };
    if key.is_empty() {
        return Err(OptError::EmptyKey(word));
    }
    if !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)) {
        return Err(OptError::BadKey(key));
    }
    let Some(known) = KNOWN.iter().find(|k| k.key == key) else {
        return Err(OptError::Unknown(key));
    };
    match value {
        Some(v) if known.values.is_empty() || known.values.contains(&v) => Ok(Opt { key, value }),
        Some(v) => Err(OptError::BadValue { key, value: v }),
        None if known.values.is_empty() => Ok(Opt { key, value: None }),
        None => Err(OptError::BadValue { key, value: "" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entry_round_trip() {
        let mut e = [0u8; DIR_ENTRY_LEN];
        e[..4].copy_from_slice(&17u32.to_be_bytes());
        e[4..6].copy_from_slice(&0x0021u16.to_be_bytes());
        e[8..8 + OPTIONS_FILE.len()].copy_from_slice(OPTIONS_FILE.as_bytes());
        let f = FwCfgFile::parse(&e);
        assert_eq!(f.size, 17);
        assert_eq!(f.select, 0x21);
        assert_eq!(f.name(), OPTIONS_FILE);
    }

    #[test]
    fn directory_entry_with_full_length_or_bad_name() {
        let mut e = [b'a'; DIR_ENTRY_LEN];
        assert_eq!(FwCfgFile::parse(&e).name().len(), 56, "a name filling all 56 bytes has no NUL");
        e[8] = 0xff;
        assert_eq!(FwCfgFile::parse(&e).name(), "");
        assert_eq!(dir_count([0, 0, 1, 2]), 258);
    }

    #[test]
    fn options_parse_in_order_and_last_wins() {
        let o = Options::new("loglevel=debug  memmap=full loglevel=warn\0");
        let all: Vec<_> = o.iter().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], Ok(Opt { key: "memmap", value: Some("full") }));
        assert_eq!(o.get("loglevel"), Some("warn"));
        assert_eq!(o.get("nothing"), None);
        assert!(!o.is_empty());
        assert!(Options::new(" \0").is_empty());
    }

    #[test]
    fn bad_options_are_typed_errors() {
        let o = Options::new("=x Bad=1 frobnicate memmap=huge loglevel");
        let all: Vec<_> = o.iter().collect();
        assert_eq!(
            all,
            vec![
                Err(OptError::EmptyKey("=x")),
                Err(OptError::BadKey("Bad")),
                Err(OptError::Unknown("frobnicate")),
                Err(OptError::BadValue { key: "memmap", value: "huge" }),
                Err(OptError::BadValue { key: "loglevel", value: "" }),
            ]
        );
        assert_eq!(o.get("memmap"), None, "a rejected value is never returned");
    }

    /// The re-export is FNV-1a 64 (goes with the re-export).
    #[test]
    fn free_form_options_take_any_value() {
        assert_eq!(Options::new("ramdisk_fnv=00ff").get("ramdisk_fnv"), Some("00ff"));
    }

    #[test]
    fn every_known_option_lists_its_values() {
        for k in KNOWN {
            assert!(!k.help.is_empty());
            for v in k.values {
                let s = format!("{}={}", k.key, v);
                assert_eq!(Options::new(&s).get(k.key), Some(*v));
            }
        }
    }

    #[test]
    fn numbers_fall_back_to_the_default() {
        let o = Options::new("swap_mem=512 swap_factor=x");
        assert_eq!(o.number("swap_mem", 1), 512);
        assert_eq!(o.number("swap_factor", 3), 3);
        assert_eq!(o.number("swap_slots", 7), 7);
    }
}
