//! The option table: every kernel option in one place, with what it accepts, its default, who reads it
//! and its help line. The parser ([`crate::Settings::parse`]), the README table and `--help-kernel`
//! ([`crate::markdown_table`], [`crate::help_text`]) and xtask's host-side check all read this table.
//!
//! # Why
//!
//! Option names, defaults and ranges used to live in three places: a list of keys for the help, the
//! README prose, and the `number("swap_mem", 1024).max(1)` calls spread over the kernel. They drifted
//! (the README said `deflate_level=1..10`, the kernel silently turned `swap_mem=0` into 1 and
//! `swap_mem=abc` into 1024). One table fixes that: a row per option, and everything else derived.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | key | the name before `=` (`swap_mem`) |
//! | kind | what the value may be: a word from a list ([`Kind::Enum`]), a decimal in `min..=max` ([`Kind::Number`]), or 16 hex digits ([`Kind::Hex64`]) |
//! | default | the value when the key is absent: a number, a word, or text saying how the kernel derives it ([`NumberDefault`]) |
//! | used by | which kernels read it ([`UsedBy`]): every kernel at boot, some workloads of the demo kernel, or only test kernels |
//! | test only | read only by test kernels (for example fault injection that makes a run fail on purpose) |
//! | derived value | a value computed from options, such as the swap region (`swap_mem x swap_factor`); checked at parse time, see [`crate::Settings`] |
//!
//! # Layout of a row
//!
//! | field | example |
//! |---|---|
//! | `key` | `"swap_mem"` |
//! | `kind` | `Number { min: 1, max: 1048576, default: Value(1024) }` |
//! | `used_by` | `Workloads(&[Swap, All])` |
//! | `help` | `"resident budget of the swap workload in pages"` |
//!
//! # Worked example
//!
//! `swap_accesses` is `Number { min: 0, max: 4294967296, default: Derived("4 x swap region") }`: absent, it is
//! 4 x 3072 = 12288 with the default budget 1024 and factor 3; `swap_accesses=0` is accepted (only the
//! fill runs); `swap_accesses=4294967297` is `OutOfRange`. The README row reads
//! ``| `swap_accesses` | `0..=4294967296` | 4 x swap region | swap, all | … |``.
//!
//! # Contracts
//!
//! - Keys are unique and match `[a-z0-9_.-]+`; every `Enum` default is one of its values; every `Number`
//!   has `min <= max` and a `Value` default inside the range. The host tests check all of it.
//! - Adding an option means: a row here, a field in [`crate::Settings`] (the tests fail until the
//!   field exists), and the README table regenerated (a test compares it).

use crate::choices::{
    Backend, BlkFailKind, BlkFailOp, Compressor, EphemeralReclaim, FailSchedule, LogLevel, MemMap, SwapCacheMode,
    SwapDevice, SwapMode, SwapPattern, SwapSharing, TmemBackends, Workload,
};

/// The most pages the swap region (`swap_mem x swap_factor`) may have: the kernel's swapper refuses
/// a region above 2^26 pages (256 GiB of virtual addresses).
pub const SWAP_REGION_MAX_PAGES: u64 = 1 << 26;

/// What an option's value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One word of `values` (case-sensitive); `default` is one of them.
    Enum { values: &'static [&'static str], default: &'static str },
    /// A decimal number in `min..=max`: digits only, no sign, no `_`, no `0x`.
    Number { min: u64, max: u64, default: NumberDefault },
    /// Exactly 16 hex digits (a 64-bit checksum); no default: absent means "not given".
    Hex64,
    /// What the page trace follows: `off` (the default), `page:N` (page N of the swap workload's
    /// region) or `file:INODE` (the cleancache pages of one file of the file disk).
    Trace,
}

/// The default of a [`Kind::Number`] option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberDefault {
    /// This number.
    Value(u64),
    /// Computed from other options or from the machine; the text says how (for the README and help).
    Derived(&'static str),
    /// Absent means the feature is off; the text says what happens instead.
    Off(&'static str),
}

/// Which kernels read an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedBy {
    /// Every kernel, the test kernels too, during boot.
    Boot,
    /// The demo kernel, when it runs one of these workloads.
    Workloads(&'static [Workload]),
    /// Only test kernels (`cargo xtask test`); the demo ignores it.
    TestKernels,
}

/// One row of the option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub key: &'static str,
    pub kind: Kind,
    pub used_by: UsedBy,
    /// One line, no trailing full stop; the README and `--help-kernel` print it.
    pub help: &'static str,
}

impl OptionSpec {
    /// True for options only test kernels read.
    pub const fn test_only(&self) -> bool {
        matches!(self.used_by, UsedBy::TestKernels)
    }
}

/// The row of `key`, if it is an option.
pub fn spec(key: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.key == key)
}

const SWAP: &[Workload] = &[Workload::Swap, Workload::All, Workload::Sweep, Workload::Shell];
const SWAP_ONLY: &[Workload] = &[Workload::Swap];
const FILES: &[Workload] = &[Workload::Files, Workload::All, Workload::Shell];
const SOAK: &[Workload] = &[Workload::Soak];
const FILES_ONLY: &[Workload] = &[Workload::Files];
const TRACE: &[Workload] = &[Workload::Swap, Workload::Files, Workload::All, Workload::Shell];
const TMEM: &[Workload] = &[Workload::Swap, Workload::Files, Workload::All, Workload::Sweep, Workload::Shell];
/// The fewest `bench_stores`: bench_smp's keys per CPU, so that every phase overwrites each key.
pub const BENCH_STORES_MIN: u64 = 64;
/// 2^32: the cap of the counts (accesses, operations, "every N") — hours of TCG time, far above any run.
const COUNT_MAX: u64 = 1 << 32;

/// Every kernel option. Add a row here when a subsystem reads a new option.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "loglevel",
        kind: Kind::Enum { values: LogLevel::NAMES, default: "info" },
        used_by: UsedBy::Boot,
        help: "most verbose log level printed on the serial console",
    },
    OptionSpec {
        key: "memmap",
        kind: Kind::Enum { values: MemMap::NAMES, default: "summary" },
        used_by: UsedBy::Boot,
        help: "print the memory map as a summary or region by region",
    },
    OptionSpec {
        key: "ramdisk_fnv",
        kind: Kind::Hex64,
        used_by: UsedBy::Boot,
        help: "FNV-1a 64 of the ramdisk as xtask sent it (xtask sets it with --pages); the kernel checks the \
               ramdisk against it",
    },
    OptionSpec {
        key: "workload",
        kind: Kind::Enum { values: Workload::NAMES, default: "pools" },
        used_by: UsedBy::Workloads(Workload::EVERY),
        help: "what the demo runs: the pools demo, the swap workload or the file workload without and with \
               tmem, both workloads over one tmem, the sweep over memory sizes, the soak (faults injected), or \
               the serial shell",
    },
    OptionSpec {
        key: "compressor",
        kind: Kind::Enum { values: Compressor::NAMES, default: "lz4" },
        used_by: UsedBy::Workloads(Workload::EVERY),
        help: "compressor of the pools and of tmem",
    },
    OptionSpec {
        key: "deflate_level",
        kind: Kind::Number { min: 1, max: 10, default: NumberDefault::Value(1) },
        used_by: UsedBy::Workloads(Workload::EVERY),
        help: "deflate level when compressor=deflate (10 is miniz_oxide's slowest)",
    },
    OptionSpec {
        key: "swap_pattern",
        kind: Kind::Enum { values: SwapPattern::NAMES, default: "zipf" },
        used_by: UsedBy::Workloads(SWAP),
        help: "access pattern of the swap workload after its fill; all = each in turn (not with workload=all)",
    },
    OptionSpec {
        key: "swap_mem",
        kind: Kind::Number { min: 1, max: 1 << 20, default: NumberDefault::Value(1024) },
        used_by: UsedBy::Workloads(SWAP),
        help: "memory of the swap workload in pages N: resident pages + every pool frame <= N (swap_mode=equal), \
               or resident pages alone <= N with the pool on top (swap_mode=fixed)",
    },
    OptionSpec {
        key: "swap_mode",
        kind: Kind::Enum { values: SwapMode::NAMES, default: "equal" },
        used_by: UsedBy::Workloads(SWAP),
        help: "equal: the pool comes out of the workload's memory, as in Linux; fixed: the pool is extra memory on \
               top of swap_mem (the old demo, kept under this name)",
    },
    OptionSpec {
        key: "swap_device",
        kind: Kind::Enum { values: SwapDevice::NAMES, default: "disk" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "the swap device: the virtio-blk disk (frontswap and tmem in front of it), or zram, a compressed RAM \
               disk over zsmalloc (no frontswap)",
    },
    OptionSpec {
        key: "swap_cache",
        kind: Kind::Enum { values: SwapCacheMode::NAMES, default: "on" },
        used_by: UsedBy::Workloads(SWAP),
        help: "on: a page swapped in keeps its slot and tmem copy until written, so a clean page reclaimed again \
               costs nothing; exclusive: loads drop the copy (zswap's exclusive_loads)",
    },
    OptionSpec {
        key: "swap_cpus",
        kind: Kind::Number { min: 1, max: 16, default: NumberDefault::Value(1) },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "workers: the swap workload runs on this many CPUs at once, the accesses split among them (at most the \
               CPUs that are up)",
    },
    OptionSpec {
        key: "swap_sharing",
        kind: Kind::Enum { values: SwapSharing::NAMES, default: "shared" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "with swap_cpus > 1: shared, every CPU on its own stripe of every page (reclaim unmaps pages others \
               use); split, each CPU on its own slice of the region",
    },
    OptionSpec {
        key: "files_cpus",
        kind: Kind::Number { min: 1, max: 16, default: NumberDefault::Value(1) },
        used_by: UsedBy::Workloads(FILES_ONLY),
        help: "workers: the file workload runs on this many CPUs at once over one page cache, the operations \
               split among them (at most the CPUs that are up)",
    },
    OptionSpec {
        key: "blk_fail_every",
        kind: Kind::Number { min: 0, max: COUNT_MAX, default: NumberDefault::Value(0) },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "fault injection: every Nth swap-disk request of blk_fail_op fails as blk_fail_kind says (0: none); \
               a failed swap-in loses its page, a failed swap-out keeps it resident",
    },
    OptionSpec {
        key: "blk_fail_op",
        kind: Kind::Enum { values: BlkFailOp::NAMES, default: "any" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "which swap-disk requests blk_fail_every counts",
    },
    OptionSpec {
        key: "blk_fail_kind",
        kind: Kind::Enum { values: BlkFailKind::NAMES, default: "error" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "error: the request fails, the disk goes on; timeout or wrong_token: the disk is marked broken",
    },
    OptionSpec {
        key: "swap_factor",
        kind: Kind::Number { min: 1, max: 1024, default: NumberDefault::Value(3) },
        used_by: UsedBy::Workloads(SWAP),
        help: "swap region = factor x swap_mem pages, at most 67108864 (256 GiB)",
    },
    OptionSpec {
        key: "swap_accesses",
        kind: Kind::Number { min: 0, max: COUNT_MAX, default: NumberDefault::Derived("4 x swap region") },
        used_by: UsedBy::Workloads(SWAP),
        help: "swap workload accesses after the fill",
    },
    OptionSpec {
        key: "swap_slots",
        kind: Kind::Number {
            min: 0,
            max: SWAP_REGION_MAX_PAGES,
            default: NumberDefault::Derived("all of the swap disk"),
        },
        used_by: UsedBy::Workloads(SWAP),
        help: "swap slots to use on the swap disk, at most its size (fewer, to see running out of swap)",
    },
    OptionSpec {
        key: "swap_fresh",
        kind: Kind::Number { min: 0, max: 100, default: NumberDefault::Off("the ramdisk, else a synthetic mix") },
        used_by: UsedBy::Workloads(SWAP),
        help: "swap workload pages compressing to about N % of a page",
    },
    OptionSpec {
        key: "tmem",
        kind: Kind::Enum { values: TmemBackends::NAMES, default: "zsmalloc" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "tmem backend of the swap workload's frontswap run; both = zsmalloc and zbud, all = the four pools, a \
               run with each",
    },
    OptionSpec {
        key: "tmem_max_pool_percent",
        kind: Kind::Number { min: 1, max: 100, default: NumberDefault::Derived("20; 1 with workload=all") },
        used_by: UsedBy::Workloads(TMEM),
        help: "most RAM tmem's pools may take, in percent (as zswap's max_pool_percent)",
    },
    OptionSpec {
        key: "files_cache",
        kind: Kind::Number { min: 1, max: 1 << 20, default: NumberDefault::Value(192) },
        used_by: UsedBy::Workloads(FILES),
        help: "page-cache pages of the file workload",
    },
    OptionSpec {
        key: "files_factor",
        kind: Kind::Number { min: 1, max: 1024, default: NumberDefault::Value(4) },
        used_by: UsedBy::Workloads(FILES),
        help: "file set = about factor x the page cache",
    },
    OptionSpec {
        key: "soak_seconds",
        kind: Kind::Number { min: 1, max: 86_400, default: NumberDefault::Value(60) },
        used_by: UsedBy::Workloads(SOAK),
        help: "how long the soak runs its rounds (guest TSC time)",
    },
    OptionSpec {
        key: "files_ops",
        kind: Kind::Number { min: 0, max: COUNT_MAX, default: NumberDefault::Value(300) },
        used_by: UsedBy::Workloads(FILES),
        help: "file workload operations: a file scan or 16 random reads each",
    },
    OptionSpec {
        key: "files_invalidate_every",
        kind: Kind::Number { min: 0, max: COUNT_MAX, default: NumberDefault::Value(25) },
        used_by: UsedBy::Workloads(FILES),
        help: "invalidate a random file every N file operations (0 = never)",
    },
    OptionSpec {
        key: "cleancache",
        kind: Kind::Enum { values: Backend::NAMES, default: "zbud" },
        used_by: UsedBy::Workloads(FILES),
        help: "tmem backend of cleancache's ephemeral pool",
    },
    OptionSpec {
        key: "ephemeral_reclaim",
        kind: Kind::Enum { values: EphemeralReclaim::NAMES, default: "objects" },
        used_by: UsedBy::Workloads(TMEM),
        help: "how tmem makes room among cleancache pages: drop the oldest pages one by one, or evict whole zbud \
               frames oldest first (zcache's zbud_evict_pages)",
    },
    OptionSpec {
        key: "zv_max_zsize",
        kind: Kind::Number { min: 1, max: 4096, default: NumberDefault::Value(3584) },
        used_by: UsedBy::Workloads(TMEM),
        help: "zcache's zv_max_zsize: a persistent (frontswap) page whose stored bytes exceed this is refused (7/8 page)",
    },
    OptionSpec {
        key: "zv_max_mean_zsize",
        kind: Kind::Number { min: 1, max: 4096, default: NumberDefault::Value(2560) },
        used_by: UsedBy::Workloads(TMEM),
        help: "zcache's zv_max_mean_zsize: while the persistent pools hold more than this many bytes per page, a \
               page stored bigger than it is refused (5/8 page; 4096 turns the rule off)",
    },
    OptionSpec {
        key: "zv_page_count_policy_percent",
        kind: Kind::Number { min: 0, max: 150, default: NumberDefault::Value(75) },
        used_by: UsedBy::Workloads(TMEM),
        help: "zcache's zv_page_count_policy_percent: persistent pages held may be at most this percent of RAM's \
               pages (0 turns the rule off)",
    },
    OptionSpec {
        key: "fail_frame_every",
        kind: Kind::Number { min: 0, max: COUNT_MAX, default: NumberDefault::Value(0) },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "fault injection: one in N pool or workload frame allocations fails, picked as fail_frame_schedule \
               says (0 = off)",
    },
    OptionSpec {
        key: "fail_frame_schedule",
        kind: Kind::Enum { values: FailSchedule::NAMES, default: "every" },
        used_by: UsedBy::Workloads(SWAP_ONLY),
        help: "which allocations fail_frame_every fails: every Nth exactly, or each with chance 1/N from a fixed \
               seed (random is not periodic, so it cannot lock step with a fault's retries)",
    },
    OptionSpec {
        key: "trace",
        kind: Kind::Trace,
        used_by: UsedBy::Workloads(TRACE),
        help: "print one line per step of one page's journey: page:N follows page N of the swap region out to tmem \
               (or the disk) and back, file:INODE the cleancache puts and gets of one file; the shell's `trace` \
               turns it on and off",
    },
    OptionSpec {
        key: "corrupt_stored",
        kind: Kind::Number { min: 1, max: 1_000_000_000, default: NumberDefault::Off("off") },
        used_by: UsedBy::Workloads(&[Workload::Pools]),
        help: "for tests: flip a byte of the Nth object stored in each pool of the pools demo, to prove that a \
               damaged page fails the run (cargo xtask test's run_fails_on_corrupt_page)",
    },
    OptionSpec {
        key: "bench_stores",
        kind: Kind::Number { min: BENCH_STORES_MIN, max: 1_000_000, default: NumberDefault::Value(3000) },
        used_by: UsedBy::TestKernels,
        help: "frontswap stores per CPU in each phase (1, 2, 4 CPUs) of the bench_smp benchmark kernel; at least its \
               64 keys per CPU (cargo xtask bench --quick gives 600)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_well_formed() {
        for (i, o) in OPTIONS.iter().enumerate() {
            assert!(!o.key.is_empty());
            assert!(o.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)));
            assert!(OPTIONS[..i].iter().all(|p| p.key != o.key), "{} twice", o.key);
            assert_eq!(spec(o.key), Some(o));
        }
        assert_eq!(spec("nothing"), None);
    }

    #[test]
    fn defaults_lie_inside_what_is_accepted() {
        for o in OPTIONS {
            assert!(!o.help.is_empty() && !o.help.ends_with('.') && !o.help.contains('\n'), "{}", o.key);
            match o.kind {
                Kind::Enum { values, default } => {
                    assert!(!values.is_empty());
                    assert!(values.contains(&default), "{}: default {default} not a value", o.key);
                }
                Kind::Number { min, max, default } => {
                    assert!(min <= max, "{}", o.key);
                    if let NumberDefault::Value(d) = default {
                        assert!((min..=max).contains(&d), "{}: default {d} outside {min}..={max}", o.key);
                    }
                }
                Kind::Hex64 | Kind::Trace => {}
            }
        }
    }

    #[test]
    fn only_bench_stores_is_for_test_kernels_alone() {
        // corrupt_stored is for tests, but it is the demo kernel that a harness check boots with it;
        // bench_stores is read by the bench_smp kernel only.
        let test_only: Vec<_> = OPTIONS.iter().filter(|o| o.test_only()).map(|o| o.key).collect();
        assert_eq!(test_only, ["bench_stores"]);
    }
}
