//! Settings: the whole option string checked against the option table at once, into one typed struct.
//!
//! # Why
//!
//! `Options::number("swap_mem", 1024)` looked an option up where it was used and fell back to the
//! default on any bad value, so a typo changed the experiment without a word. [`Settings::parse`] instead
//! checks *every* option before anything runs — unknown key, unparsable number, negative, overflowing,
//! out of range, not one of the words, and combinations whose arithmetic leaves its limit — and either
//! refuses the whole string with one message per bad option or returns typed values the kernel uses as
//! they are. xtask runs the same function on the host, so a typo fails before building or booting.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | word | one white-space-separated piece of the option string: `key=value` |
//! | checked value | a [`Value`]: a word's value once it passed its row of the table |
//! | given | an option that appears in the string (the last occurrence counts) |
//! | derived | computed from options: the swap region, the default `swap_accesses`, the file set, the tmem percent |
//!
//! # Layout
//!
//! ```text
//!   "swap_mem=512 tmem=zbud"
//!      │ split at white space; each word: key syntax → row of OPTIONS → value checked by the row's kind
//!      ▼
//!   given: [Option<Value>; OPTIONS.len()]   (one slot per row; a repeated key overwrites its slot)
//!      │ every word fine? then: defaults for the empty slots, words → enums, the combinations checked
//!      ▼
//!   Settings { swap_mem: 512, tmem: Zbud, swap_region_pages: 1536, swap_accesses: 6144, … }
//! ```
//!
//! # Worked example
//!
//! `Settings::parse("swap_mem=512 swap_factor=2")` gives a `Settings` with `swap_mem() == 512`,
//! `swap_region_pages() == 1024` and `swap_accesses() == 4096` (the default, 4 x the region).
//! `Settings::parse("swap_mem=abc deflate_level=0 frob=1")` gives `Err` with three errors, in order:
//! `NotANumber`, `OutOfRange { min: 1, max: 10, .. }` and `UnknownKey`.
//! `Settings::parse("swap_mem=1048576 swap_factor=65")` gives one `DerivedOverflow`: the region,
//! 68157440 pages, is above the swapper's 67108864.
//!
//! # Contracts
//!
//! - `parse` returns `Ok` only when every word is a known key with an accepted value and every derived
//!   value is within its limit. `Err` holds every bad word's error in the order of the words; only when
//!   every word is fine are the combinations checked, and then the first bad one is the only error.
//! - A repeated key is accepted and the last occurrence wins (xtask appends `workload=` and
//!   `ramdisk_fnv=` after the user's options); every occurrence is still checked.
//! - NULs separate words like white space (fw_cfg may deliver the string with a trailing NUL); an empty
//!   string is all defaults.
//! - A `Settings` exists only through `parse`: its fields are private, so every value the kernel reads
//!   passed the table, and the derived values were computed once with checked arithmetic.

use alloc::vec::Vec;

use crate::choices::{
    Backend, BlkFailKind, BlkFailOp, Compressor, EphemeralReclaim, FailSchedule, LogLevel, MemMap, SwapCacheMode,
    SwapDevice, SwapMode, SwapPattern, SwapSharing, TmemBackends, Workload,
};
use crate::error::{OptionError, suggest};
use crate::table::{Kind, NumberDefault, OPTIONS, OptionSpec, SWAP_REGION_MAX_PAGES};

/// `swap_accesses` when it is not given: this many accesses per page of the swap region.
pub const SWAP_ACCESSES_PER_REGION_PAGE: u64 = 4;
/// `tmem_max_pool_percent` when it is not given (zswap's default `max_pool_percent`).
pub const TMEM_POOL_PERCENT_DEFAULT: u8 = 20;
/// `tmem_max_pool_percent` when it is not given and `workload=all`: small, so that frontswap's
/// pressure on the shared limit shows as cleancache pages dropped.
pub const TMEM_POOL_PERCENT_DEFAULT_ALL: u8 = 1;

/// What the page trace follows (`trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trace {
    #[default]
    Off,
    /// Page N of the swap workload's region.
    Page(u64),
    /// The cleancache pages of the file with this inode number.
    File(u64),
}

/// A value that passed its row of the table, or (from [`Settings::get`]) a field's value as text would
/// give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Number(u64),
    /// One of the row's words.
    Choice(&'static str),
    Hex(u64),
    /// A `trace` value.
    Trace(Trace),
    /// Not given and without a default value (the kernel derives it or the feature is off).
    Unset,
}

impl core::fmt::Display for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Choice(w) => f.write_str(w),
            Value::Hex(h) => write!(f, "{h:016x}"),
            Value::Trace(Trace::Off) => f.write_str("off"),
            Value::Trace(Trace::Page(n)) => write!(f, "page:{n}"),
            Value::Trace(Trace::File(n)) => write!(f, "file:{n}"),
            Value::Unset => f.write_str("(unset)"),
        }
    }
}

/// Every kernel option, checked and typed. Built only by [`Settings::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    loglevel: LogLevel,
    memmap: MemMap,
    ramdisk_fnv: Option<u64>,
    workload: Workload,
    compressor: Compressor,
    deflate_level: u8,
    swap_pattern: SwapPattern,
    swap_mem: u64,
    swap_mode: SwapMode,
    swap_device: SwapDevice,
    swap_cache: SwapCacheMode,
    swap_cpus: u64,
    swap_sharing: SwapSharing,
    files_cpus: u64,
    blk_fail_every: u64,
    blk_fail_op: BlkFailOp,
    blk_fail_kind: BlkFailKind,
    swap_factor: u64,
    swap_accesses: u64,
    swap_slots: Option<u64>,
    swap_fresh: Option<u8>,
    tmem: TmemBackends,
    tmem_max_pool_percent: u8,
    files_cache: u64,
    files_factor: u64,
    files_ops: u64,
    soak_seconds: u64,
    files_invalidate_every: Option<u64>,
    cleancache: Backend,
    ephemeral_reclaim: EphemeralReclaim,
    zv_max_zsize: u64,
    zv_max_mean_zsize: u64,
    zv_page_count_policy_percent: u64,
    fail_frame_every: Option<u64>,
    fail_frame_schedule: FailSchedule,
    corrupt_stored: Option<u64>,
    trace: Trace,
    bench_stores: u64,
    swap_region_pages: u64,
    files_set_pages: u64,
}

fn key_char_ok(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)
}

/// Check one `key=value` word: its key syntax, that the key is in the table, and its value against the
/// row. Returns the row's index and the checked value.
pub fn check_word(word: &str) -> Result<(usize, Value), OptionError<'_>> {
    let (key, value) = match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    };
    if key.is_empty() || !key.bytes().all(key_char_ok) {
        return Err(OptionError::BadKey { word });
    }
    let Some(index) = OPTIONS.iter().position(|o| o.key == key) else {
        return Err(OptionError::UnknownKey { key, value, suggestion: suggest(key) });
    };
    let option = &OPTIONS[index];
    match value {
        Some(v) if !v.is_empty() => check_value(option, v).map(|v| (index, v)),
        _ => Err(OptionError::MissingValue { option }),
    }
}

/// Check a non-empty `value` against `option`'s kind.
pub fn check_value<'a>(option: &'static OptionSpec, value: &'a str) -> Result<Value, OptionError<'a>> {
    match option.kind {
        Kind::Enum { values, .. } => match values.iter().find(|&&w| w == value) {
            Some(w) => Ok(Value::Choice(w)),
            None => Err(OptionError::NotOneOf { option, value, values }),
        },
        Kind::Number { min, max, .. } => {
            let n = decimal(option, value)?;
            if (min..=max).contains(&n) {
                Ok(Value::Number(n))
            } else {
                Err(OptionError::OutOfRange { option, value: n, min, max })
            }
        }
        Kind::Trace => {
            let bad = || OptionError::BadTrace { option, value };
            let number = |n: &str| {
                (!n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse::<u64>().ok())
                    .flatten()
            };
            match value.split_once(':') {
                None if value == "off" => Ok(Value::Trace(Trace::Off)),
                Some(("page", n)) => number(n).map(|n| Value::Trace(Trace::Page(n))).ok_or_else(bad),
                Some(("file", n)) => number(n).map(|n| Value::Trace(Trace::File(n))).ok_or_else(bad),
                _ => Err(bad()),
            }
        }
        Kind::Hex64 => {
            let hex = value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit());
            match u64::from_str_radix(value, 16) {
                Ok(h) if hex => Ok(Value::Hex(h)),
                _ => Err(OptionError::BadHex { option, value }),
            }
        }
    }
}

/// A decimal `u64`: digits only (no sign, no `_`, no `0x`), each step checked.
fn decimal<'a>(option: &'static OptionSpec, value: &'a str) -> Result<u64, OptionError<'a>> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if value.strip_prefix('-').is_some_and(digits) {
        return Err(OptionError::Negative { option, value });
    }
    if !digits(value) {
        return Err(OptionError::NotANumber { option, value });
    }
    value.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(OptionError::Overflow { option, value })
    })
}

/// `a x b`, refused when it passes `max` or does not fit in a `u64`.
fn derive(what: &'static str, formula: &'static str, a: u64, b: u64, max: u64) -> Result<u64, OptionError<'static>> {
    a.checked_mul(b).filter(|&p| p <= max).ok_or(OptionError::DerivedOverflow { what, formula, operands: [a, b], max })
}

/// The given values, one slot per row of [`OPTIONS`], read by key with the table's defaults.
///
/// A key missing from the table, or a row whose kind does not match the field reading it, is a bug in
/// this crate (the host tests catch it); it reads as `UnknownKey` rather than as a panic.
struct Given<'g>(&'g [Option<Value>]);

impl Given<'_> {
    fn slot(&self, key: &'static str) -> Result<(&'static OptionSpec, Option<Value>), OptionError<'static>> {
        let i = OPTIONS.iter().position(|o| o.key == key).ok_or(mismatch(key))?;
        Ok((&OPTIONS[i], self.0.get(i).copied().flatten()))
    }

    /// The word of an `Enum` row (given or default), as `T`.
    fn choice<T>(&self, key: &'static str, from_name: fn(&str) -> Option<T>) -> Result<T, OptionError<'static>> {
        let (option, value) = self.slot(key)?;
        let Kind::Enum { values, default } = option.kind else { return Err(mismatch(key)) };
        let word = match value {
            Some(Value::Choice(w)) => w,
            None => default,
            Some(_) => return Err(mismatch(key)),
        };
        from_name(word).ok_or(OptionError::NotOneOf { option, value: word, values })
    }

    /// A `Number` row's value: given, else its `Value` default, else `None` (derived or off).
    fn number(&self, key: &'static str) -> Result<(&'static OptionSpec, Option<u64>), OptionError<'static>> {
        let (option, value) = self.slot(key)?;
        let Kind::Number { default, .. } = option.kind else { return Err(mismatch(key)) };
        match (value, default) {
            (Some(Value::Number(n)), _) | (None, NumberDefault::Value(n)) => Ok((option, Some(n))),
            (None, NumberDefault::Derived(_) | NumberDefault::Off(_)) => Ok((option, None)),
            (Some(_), _) => Err(mismatch(key)),
        }
    }

    /// A `Number` row that always has a value (given or its `Value` default).
    fn required(&self, key: &'static str) -> Result<u64, OptionError<'static>> {
        self.number(key)?.1.ok_or(mismatch(key))
    }

    /// A `Number` row narrowed to `u8` (a range above 255 would be refused as out of range).
    fn small(&self, key: &'static str) -> Result<Option<u8>, OptionError<'static>> {
        let (option, n) = self.number(key)?;
        let Kind::Number { min, max, .. } = option.kind else { return Err(mismatch(key)) };
        n.map(|n| u8::try_from(n).map_err(|_| OptionError::OutOfRange { option, value: n, min, max })).transpose()
    }

    /// A `Number` row where 0 means off.
    fn nonzero(&self, key: &'static str) -> Result<Option<u64>, OptionError<'static>> {
        Ok(self.number(key)?.1.filter(|&n| n != 0))
    }

    fn trace(&self, key: &'static str) -> Result<Trace, OptionError<'static>> {
        match self.slot(key)? {
            (OptionSpec { kind: Kind::Trace, .. }, None) => Ok(Trace::Off),
            (OptionSpec { kind: Kind::Trace, .. }, Some(Value::Trace(t))) => Ok(t),
            _ => Err(mismatch(key)),
        }
    }

    fn hex(&self, key: &'static str) -> Result<Option<u64>, OptionError<'static>> {
        match self.slot(key)? {
            (OptionSpec { kind: Kind::Hex64, .. }, None) => Ok(None),
            (OptionSpec { kind: Kind::Hex64, .. }, Some(Value::Hex(h))) => Ok(Some(h)),
            _ => Err(mismatch(key)),
        }
    }
}

fn mismatch(key: &'static str) -> OptionError<'static> {
    OptionError::UnknownKey { key, value: None, suggestion: None }
}

impl Settings {
    /// Check the whole option string and build the settings, or return every bad option (see the
    /// module's contracts). `Err` is never empty.
    pub fn parse(raw: &str) -> Result<Settings, Vec<OptionError<'_>>> {
        let mut given = [None; OPTIONS.len()];
        let mut errors = Vec::new();
        for word in raw.split(|c: char| c.is_whitespace() || c == '\0').filter(|w| !w.is_empty()) {
            match check_word(word) {
                Ok((i, v)) => given[i] = Some(v),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Self::build(&Given(&given)).map_err(|e| alloc::vec![e])
    }

    fn build(g: &Given<'_>) -> Result<Settings, OptionError<'static>> {
        let workload = g.choice("workload", Workload::from_name)?;
        let swap_pattern = g.choice("swap_pattern", SwapPattern::from_name)?;
        if workload == Workload::All && swap_pattern == SwapPattern::All {
            let (option, _) = g.slot("swap_pattern")?;
            let accepted = "sequential|seq|random|zipf";
            return Err(OptionError::Conflict { option, value: "all", with: "workload=all", accepted });
        }
        // Several workers exist for the swap and the file demo only; any other workload would ignore the
        // option silently, so it is refused instead.
        for (key, only, with) in [
            ("swap_cpus", Workload::Swap, "a workload other than swap"),
            ("files_cpus", Workload::Files, "a workload other than files"),
        ] {
            if workload != only && g.required(key)? > 1 {
                let (option, _) = g.slot(key)?;
                return Err(OptionError::Conflict { option, value: "more than 1", with, accepted: "1" });
            }
        }
        let swap_mem = g.required("swap_mem")?;
        let swap_factor = g.required("swap_factor")?;
        let swap_region_pages =
            derive("swap region pages", "swap_mem x swap_factor", swap_mem, swap_factor, SWAP_REGION_MAX_PAGES)?;
        let swap_accesses = match g.number("swap_accesses")? {
            (_, Some(n)) => n,
            (option, None) => {
                let Kind::Number { max, .. } = option.kind else { return Err(mismatch("swap_accesses")) };
                let per = SWAP_ACCESSES_PER_REGION_PAGE;
                derive("default swap_accesses", "4 x swap region", per, swap_region_pages, max)?
            }
        };
        let files_cache = g.required("files_cache")?;
        let files_factor = g.required("files_factor")?;
        let files_set_pages =
            derive("file set pages", "files_cache x files_factor", files_cache, files_factor, u64::MAX)?;
        let tmem_default = if matches!(workload, Workload::All | Workload::Shell) {
            TMEM_POOL_PERCENT_DEFAULT_ALL
        } else {
            TMEM_POOL_PERCENT_DEFAULT
        };
        Ok(Settings {
            loglevel: g.choice("loglevel", LogLevel::from_name)?,
            memmap: g.choice("memmap", MemMap::from_name)?,
            ramdisk_fnv: g.hex("ramdisk_fnv")?,
            workload,
            compressor: g.choice("compressor", Compressor::from_name)?,
            deflate_level: g.small("deflate_level")?.ok_or(mismatch("deflate_level"))?,
            swap_pattern,
            swap_mem,
            swap_mode: g.choice("swap_mode", SwapMode::from_name)?,
            swap_device: g.choice("swap_device", SwapDevice::from_name)?,
            swap_cache: g.choice("swap_cache", SwapCacheMode::from_name)?,
            swap_cpus: g.required("swap_cpus")?,
            swap_sharing: g.choice("swap_sharing", SwapSharing::from_name)?,
            files_cpus: g.required("files_cpus")?,
            blk_fail_every: g.required("blk_fail_every")?,
            blk_fail_op: g.choice("blk_fail_op", BlkFailOp::from_name)?,
            blk_fail_kind: g.choice("blk_fail_kind", BlkFailKind::from_name)?,
            swap_factor,
            swap_accesses,
            swap_slots: g.number("swap_slots")?.1,
            swap_fresh: g.small("swap_fresh")?,
            tmem: g.choice("tmem", TmemBackends::from_name)?,
            tmem_max_pool_percent: g.small("tmem_max_pool_percent")?.unwrap_or(tmem_default),
            files_cache,
            files_factor,
            files_ops: g.required("files_ops")?,
            soak_seconds: g.required("soak_seconds")?,
            files_invalidate_every: g.nonzero("files_invalidate_every")?,
            cleancache: g.choice("cleancache", Backend::from_name)?,
            ephemeral_reclaim: g.choice("ephemeral_reclaim", EphemeralReclaim::from_name)?,
            zv_max_zsize: g.required("zv_max_zsize")?,
            zv_max_mean_zsize: g.required("zv_max_mean_zsize")?,
            zv_page_count_policy_percent: g.required("zv_page_count_policy_percent")?,
            fail_frame_every: g.nonzero("fail_frame_every")?,
            fail_frame_schedule: g.choice("fail_frame_schedule", FailSchedule::from_name)?,
            corrupt_stored: g.number("corrupt_stored")?.1,
            trace: g.trace("trace")?,
            bench_stores: g.required("bench_stores")?,
            swap_region_pages,
            files_set_pages,
        })
    }

    /// `loglevel`.
    pub fn loglevel(&self) -> LogLevel {
        self.loglevel
    }
    /// `memmap`.
    pub fn memmap(&self) -> MemMap {
        self.memmap
    }
    /// `ramdisk_fnv`; `None` when not given (the ramdisk is not checked).
    pub fn ramdisk_fnv(&self) -> Option<u64> {
        self.ramdisk_fnv
    }
    /// `workload`.
    pub fn workload(&self) -> Workload {
        self.workload
    }
    /// `compressor`.
    pub fn compressor(&self) -> Compressor {
        self.compressor
    }
    /// `deflate_level`, 1..=10 (used when `compressor()` is `Deflate`).
    pub fn deflate_level(&self) -> u8 {
        self.deflate_level
    }
    /// `swap_pattern`; never `All` when `workload()` is `All` (refused as a conflict).
    pub fn swap_pattern(&self) -> SwapPattern {
        self.swap_pattern
    }
    /// `swap_mode`.
    pub fn swap_mode(&self) -> SwapMode {
        self.swap_mode
    }
    /// `swap_device`.
    pub fn swap_device(&self) -> SwapDevice {
        self.swap_device
    }
    /// `swap_cache`.
    pub fn swap_cache(&self) -> SwapCacheMode {
        self.swap_cache
    }
    /// `swap_cpus`: workers of the swap workload, 1..=16 (1: the boot CPU alone).
    pub fn swap_cpus(&self) -> u64 {
        self.swap_cpus
    }
    /// `blk_fail_every`: every Nth swap-disk request fails (0: none).
    pub fn blk_fail_every(&self) -> u64 {
        self.blk_fail_every
    }
    /// `blk_fail_op`.
    pub fn blk_fail_op(&self) -> BlkFailOp {
        self.blk_fail_op
    }
    /// `blk_fail_kind`.
    pub fn blk_fail_kind(&self) -> BlkFailKind {
        self.blk_fail_kind
    }
    /// `files_cpus`: workers of the file workload, 1..=16.
    pub fn files_cpus(&self) -> u64 {
        self.files_cpus
    }
    /// `swap_sharing`: how several workers share the region.
    pub fn swap_sharing(&self) -> SwapSharing {
        self.swap_sharing
    }
    /// `swap_mem`: the workload's memory in pages, 1..=2^20.
    pub fn swap_mem(&self) -> u64 {
        self.swap_mem
    }
    /// `swap_factor`, 1..=1024.
    pub fn swap_factor(&self) -> u64 {
        self.swap_factor
    }
    /// The swap region in pages: `swap_mem x swap_factor`, at most [`SWAP_REGION_MAX_PAGES`].
    pub fn swap_region_pages(&self) -> u64 {
        self.swap_region_pages
    }
    /// `swap_accesses`, or when not given 4 x [`swap_region_pages`](Self::swap_region_pages).
    pub fn swap_accesses(&self) -> u64 {
        self.swap_accesses
    }
    /// `swap_slots`; `None` means all of the swap disk. The kernel must refuse a value above the disk's
    /// size (kopts does not know it).
    pub fn swap_slots(&self) -> Option<u64> {
        self.swap_slots
    }
    /// `swap_fresh`, 0..=100 %; `None` means the ramdisk's pages, else the synthetic mix.
    pub fn swap_fresh(&self) -> Option<u8> {
        self.swap_fresh
    }
    /// `tmem`.
    pub fn tmem(&self) -> TmemBackends {
        self.tmem
    }
    /// `tmem_max_pool_percent`, 1..=100; when not given 20, or 1 with `workload=all`.
    pub fn tmem_max_pool_percent(&self) -> u8 {
        self.tmem_max_pool_percent
    }
    /// tmem's limit in pages: `tmem_max_pool_percent` % of `managed_frames`, rounded down. Computed as
    /// `q x p + r x p / 100` with `managed_frames = 100 q + r`, which cannot overflow for `p <= 100`.
    pub fn tmem_limit_pages(&self, managed_frames: u64) -> u64 {
        let p = u64::from(self.tmem_max_pool_percent);
        managed_frames / 100 * p + managed_frames % 100 * p / 100
    }
    /// `files_cache`: page-cache pages, 1..=2^20.
    pub fn files_cache(&self) -> u64 {
        self.files_cache
    }
    /// `files_factor`, 1..=1024.
    pub fn files_factor(&self) -> u64 {
        self.files_factor
    }
    /// The file set's target size in pages: `files_cache x files_factor`.
    pub fn files_set_pages(&self) -> u64 {
        self.files_set_pages
    }
    /// `files_ops`.
    pub fn files_ops(&self) -> u64 {
        self.files_ops
    }
    /// `soak_seconds`: how long `workload=soak` runs, 1..=86400.
    pub fn soak_seconds(&self) -> u64 {
        self.soak_seconds
    }
    /// `files_invalidate_every`; `None` for 0 (never).
    pub fn files_invalidate_every(&self) -> Option<u64> {
        self.files_invalidate_every
    }
    /// `cleancache`.
    pub fn cleancache(&self) -> Backend {
        self.cleancache
    }
    /// `ephemeral_reclaim`.
    pub fn ephemeral_reclaim(&self) -> EphemeralReclaim {
        self.ephemeral_reclaim
    }
    /// `zv_max_zsize`, 1..=4096 bytes.
    pub fn zv_max_zsize(&self) -> u64 {
        self.zv_max_zsize
    }
    /// `zv_max_mean_zsize`, 1..=4096 bytes.
    pub fn zv_max_mean_zsize(&self) -> u64 {
        self.zv_max_mean_zsize
    }
    /// `zv_page_count_policy_percent`, 0..=150 (0: off).
    pub fn zv_page_count_policy_percent(&self) -> u64 {
        self.zv_page_count_policy_percent
    }
    /// `fail_frame_every`; `None` for 0 (off).
    pub fn fail_frame_every(&self) -> Option<u64> {
        self.fail_frame_every
    }
    /// `fail_frame_schedule`.
    pub fn fail_frame_schedule(&self) -> FailSchedule {
        self.fail_frame_schedule
    }
    /// `trace`: what the page trace follows from boot on.
    pub fn trace(&self) -> Trace {
        self.trace
    }
    /// `corrupt_stored` (test kernels only); `None` when not given (off).
    pub fn corrupt_stored(&self) -> Option<u64> {
        self.corrupt_stored
    }
    /// `bench_stores` (test kernels only: bench_smp): stores per CPU per phase, at least
    /// [`BENCH_STORES_MIN`](crate::table::BENCH_STORES_MIN).
    pub fn bench_stores(&self) -> u64 {
        self.bench_stores
    }

    /// The value of option `key` as the kernel runs with it (defaults and derived values resolved),
    /// written back as a [`Value`]; `None` for a key not in the table. For printing the options at boot
    /// (`for o in OPTIONS { println!("{} = {}", o.key, s.get(o.key)?) }`) and for the table-driven tests.
    pub fn get(&self, key: &str) -> Option<Value> {
        let n = Value::Number;
        let opt = |v: Option<u64>| v.map_or(Value::Unset, Value::Number);
        Some(match key {
            "loglevel" => Value::Choice(self.loglevel.name()),
            "memmap" => Value::Choice(self.memmap.name()),
            "ramdisk_fnv" => self.ramdisk_fnv.map_or(Value::Unset, Value::Hex),
            "workload" => Value::Choice(self.workload.name()),
            "compressor" => Value::Choice(self.compressor.name()),
            "deflate_level" => n(self.deflate_level.into()),
            "swap_pattern" => Value::Choice(self.swap_pattern.name()),
            "swap_mem" => n(self.swap_mem),
            "swap_mode" => Value::Choice(self.swap_mode.name()),
            "swap_device" => Value::Choice(self.swap_device.name()),
            "swap_cache" => Value::Choice(self.swap_cache.name()),
            "swap_cpus" => n(self.swap_cpus),
            "swap_sharing" => Value::Choice(self.swap_sharing.name()),
            "files_cpus" => n(self.files_cpus),
            "blk_fail_every" => n(self.blk_fail_every),
            "blk_fail_op" => Value::Choice(self.blk_fail_op.name()),
            "blk_fail_kind" => Value::Choice(self.blk_fail_kind.name()),
            "swap_factor" => n(self.swap_factor),
            "swap_accesses" => n(self.swap_accesses),
            "swap_slots" => opt(self.swap_slots),
            "swap_fresh" => opt(self.swap_fresh.map(u64::from)),
            "tmem" => Value::Choice(self.tmem.name()),
            "tmem_max_pool_percent" => n(self.tmem_max_pool_percent.into()),
            "files_cache" => n(self.files_cache),
            "files_factor" => n(self.files_factor),
            "files_ops" => n(self.files_ops),
            "soak_seconds" => n(self.soak_seconds),
            "files_invalidate_every" => n(self.files_invalidate_every.unwrap_or(0)),
            "cleancache" => Value::Choice(self.cleancache.name()),
            "ephemeral_reclaim" => Value::Choice(self.ephemeral_reclaim.name()),
            "zv_max_zsize" => n(self.zv_max_zsize),
            "zv_max_mean_zsize" => n(self.zv_max_mean_zsize),
            "zv_page_count_policy_percent" => n(self.zv_page_count_policy_percent),
            "fail_frame_every" => n(self.fail_frame_every.unwrap_or(0)),
            "fail_frame_schedule" => Value::Choice(self.fail_frame_schedule.name()),
            "corrupt_stored" => opt(self.corrupt_stored),
            "trace" => Value::Trace(self.trace),
            "bench_stores" => n(self.bench_stores),
            _ => return None,
        })
    }
}
