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
//! Options are separated by white space; each is `key=value` or a bare `key` (a flag). Keys are
//! `[a-z0-9_.-]+`. Known keys are listed in [`KNOWN`]; an unknown key is reported, not fatal.
//!
//! Example: `loglevel=debug memmap=full` → `("loglevel", Some("debug"))`, `("memmap", Some("full"))`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

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

/// Every option the kernel reads. Add a row here when a subsystem reads a new option.
pub const KNOWN: &[KnownOption] = &[
    KnownOption {
        key: "loglevel",
        values: &["error", "warn", "info", "debug", "trace"],
        help: "most verbose log level printed on the serial console (default info)",
    },
    KnownOption {
        key: "ramdisk_fnv",
        values: &[],
        help: "FNV-1a 64 of the ramdisk as xtask sent it (hex); the kernel checks the ramdisk against it",
    },
    KnownOption { key: "compressor", values: &["lz4", "deflate"], help: "compressor of the pools demo (default lz4)" },
    KnownOption { key: "deflate_level", values: &[], help: "deflate level 1..=10 when compressor=deflate (default 1)" },
    KnownOption {
        key: "workload",
        values: &["pools", "swap", "files", "all"],
        help: "what the demo runs: the pools demo (default), the swap workload or the file workload with and \
               without tmem, or both workloads over one tmem",
    },
    KnownOption {
        key: "swap_pattern",
        values: &["sequential", "seq", "random", "zipf", "all"],
        help: "access pattern of the swap workload after its fill (default zipf)",
    },
    KnownOption {
        key: "swap_budget",
        values: &[],
        help: "resident budget of the swap workload in pages (default 1024)",
    },
    KnownOption { key: "swap_factor", values: &[], help: "swap workload region = factor x budget (default 3)" },
    KnownOption {
        key: "swap_accesses",
        values: &[],
        help: "swap workload accesses after the fill (default 4 x region)",
    },
    KnownOption { key: "swap_slots", values: &[], help: "swap slots to use on the swap disk (default all of it)" },
    KnownOption {
        key: "swap_fresh",
        values: &[],
        help: "swap workload pages compressing to about N % (default: the ramdisk, else a synthetic mix)",
    },
    KnownOption {
        key: "tmem",
        values: &["zsmalloc", "zbud", "both"],
        help: "tmem backend of the swap workload's frontswap run (default zsmalloc)",
    },
    KnownOption {
        key: "tmem_max_pool_percent",
        values: &[],
        help: "most RAM tmem's pools may take, in percent (default 20, as zswap's max_pool_percent)",
    },
    KnownOption { key: "files_cache", values: &[], help: "page-cache pages of the file workload (default 192)" },
    KnownOption { key: "files_factor", values: &[], help: "file set = about factor x the page cache (default 4)" },
    KnownOption {
        key: "files_ops",
        values: &[],
        help: "file workload operations: a file scan or 16 random reads each (default 300)",
    },
    KnownOption {
        key: "files_invalidate_every",
        values: &[],
        help: "invalidate a random file every N file operations (default 25, 0 = never)",
    },
    KnownOption {
        key: "cleancache",
        values: &["zbud", "zsmalloc"],
        help: "tmem backend of cleancache's ephemeral pool (default zbud)",
    },
    KnownOption {
        key: "fail_frame_every",
        values: &[],
        help: "fault injection: every Nth pool or workload frame allocation fails (default 0, off)",
    },
    KnownOption {
        key: "memmap",
        values: &["summary", "full"],
        help: "print the memory map as a summary (default) or region by region",
    },
];

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

/// FNV-1a, 64-bit: the checksum xtask computes over a ramdisk and the kernel recomputes to prove the
/// bytes arrived intact (cheap, no tables, the same code on both sides).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
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

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

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
        let o = Options::new("swap_budget=512 swap_factor=x");
        assert_eq!(o.number("swap_budget", 1), 512);
        assert_eq!(o.number("swap_factor", 3), 3);
        assert_eq!(o.number("swap_slots", 7), 7);
    }
}
