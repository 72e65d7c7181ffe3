//! The typed values of the enumerated kernel options: one Rust enum per option that takes a word.
//!
//! # Why
//!
//! Before this module the kernel matched option strings where it used them (`Some("zbud") => …, _ =>
//! default`), so a typo such as `tmem=zbd` fell silently into the default. Here each such option has an
//! enum, and the words it accepts are the enum's own [`NAMES`](LogLevel::NAMES) list, which the option
//! table ([`crate::OPTIONS`]) points at. The table, the parser and the kernel therefore cannot disagree
//! about which words exist.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | name | the word as written on the command line (`zipf`) |
//! | alias | a second name for the same value (`seq` for `sequential`); [`name`](SwapPattern::name) gives the first |
//! | canonical name | what `name()` returns: the first name of the value in `NAMES` |
//!
//! # Layout
//!
//! | enum | option | names (canonical first) |
//! |---|---|---|
//! | [`LogLevel`] | `loglevel` | error warn info debug trace |
//! | [`MemMap`] | `memmap` | summary full |
//! | [`Workload`] | `workload` | pools swap files all sweep soak shell |
//! | [`Compressor`] | `compressor` | lz4 deflate |
//! | [`SwapPattern`] | `swap_pattern` | sequential (alias seq) random zipf all |
//! | [`TmemBackends`] | `tmem` | zsmalloc zbud xvmalloc xcfmalloc both all |
//! | [`Backend`] | `cleancache` | zbud zsmalloc xvmalloc xcfmalloc |
//! | [`EphemeralReclaim`] | `ephemeral_reclaim` | objects zbud_frames |
//! | [`SwapMode`] | `swap_mode` | equal fixed |
//! | [`SwapDevice`] | `swap_device` | disk zram |
//! | [`SwapCacheMode`] | `swap_cache` | on exclusive |
//! | [`SwapSharing`] | `swap_sharing` | split shared |
//! | [`BlkFailOp`] | `blk_fail_op` | any read write |
//! | [`BlkFailKind`] | `blk_fail_kind` | error timeout wrong_token |
//! | [`FailSchedule`] | `fail_frame_schedule` | every random |
//!
//! # Worked example
//!
//! `SwapPattern::from_name("seq")` is `Some(SwapPattern::Sequential)`, whose `name()` is `"sequential"`;
//! `SwapPattern::from_name("Zipf")` is `None` (names are case-sensitive), which the parser reports as
//! `NotOneOf` with the accepted list `SwapPattern::NAMES`.
//!
//! # Contracts
//!
//! - `from_name(n)` is `Some` exactly for the `n` in `NAMES`; `from_name(v.name()) == Some(v)` for
//!   every value `v`. The host tests check both.

/// Defines a one-name-per-value enum with its `NAMES`, `from_name` and `name`.
macro_rules! choice {
    ($(#[$m:meta])* $ty:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $ty {
            $($(#[$vm])* $variant),+
        }

        impl $ty {
            /// Every word the option accepts, as written on the command line.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value written as `text`, or `None` when `text` is not in [`Self::NAMES`].
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The word for this value.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }
    };
}

choice! {
    /// `loglevel`: the most verbose log level the serial console prints.
    LogLevel {
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

choice! {
    /// `memmap`: how the boot banner prints the memory map.
    MemMap {
        /// Counts and totals only.
        Summary = "summary",
        /// Every region on its own line.
        Full = "full",
    }
}

choice! {
    /// `workload`: what the demo kernel runs after boot.
    Workload {
        /// Both pools (zsmalloc, zbud) over the ramdisk or synthetic pages.
        Pools = "pools",
        /// The swap workload without and with frontswap.
        Swap = "swap",
        /// The file workload without and with cleancache.
        Files = "files",
        /// The swap and the file workloads at once over one tmem.
        All = "all",
        /// The swap workload at memory sizes from 20 % to 100 % of its region, for every configuration
        /// (`cargo xtask bench --sweep`).
        Sweep = "sweep",
        /// Random swap, tmem and zram rounds with device and frame faults injected, for `soak_seconds`
        /// (`cargo xtask soak`).
        Soak = "soak",
        /// The serial shell: commands typed (or replayed with `cargo xtask run --script FILE`) run the
        /// swap and file workloads step by step over one tmem and show the kernel's state.
        Shell = "shell",
    }
}

impl Workload {
    /// Every workload, in `NAMES` order.
    pub const EVERY: &'static [Workload] = &[
        Workload::Pools,
        Workload::Swap,
        Workload::Files,
        Workload::All,
        Workload::Sweep,
        Workload::Soak,
        Workload::Shell,
    ];
}

choice! {
    /// `compressor`: the algorithm every workload compresses pages with.
    Compressor {
        Lz4 = "lz4",
        /// At the level `deflate_level` gives.
        Deflate = "deflate",
    }
}

choice! {
    /// `tmem`: which tmem backend(s) the swap workload's frontswap runs use.
    TmemBackends {
        Zsmalloc = "zsmalloc",
        Zbud = "zbud",
        Xvmalloc = "xvmalloc",
        Xcfmalloc = "xcfmalloc",
        /// One run with zsmalloc and one with zbud: zcache's pair.
        Both = "both",
        /// One run with each of the four pools.
        All = "all",
    }
}

choice! {
    /// `cleancache`: the pool behind cleancache's ephemeral pages.
    Backend {
        Zbud = "zbud",
        Zsmalloc = "zsmalloc",
        Xvmalloc = "xvmalloc",
        Xcfmalloc = "xcfmalloc",
    }
}

/// `swap_pattern`: the access pattern of the swap workload after its fill. Written by hand rather than
/// with `choice!` because of the alias `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapPattern {
    /// 0, 1, 2, … wrapping (alias `seq`).
    Sequential,
    /// Uniformly random pages.
    Random,
    /// Zipf-distributed pages: a few hot, a long cold tail.
    Zipf,
    /// Each pattern in turn (`workload=swap` only: `workload=all` runs one pattern).
    All,
}

impl SwapPattern {
    /// Every word the option accepts; `seq` is an alias of `sequential`.
    pub const NAMES: &'static [&'static str] = &["sequential", "seq", "random", "zipf", "all"];

    /// The value written as `text`, or `None` when `text` is not in [`Self::NAMES`].
    pub fn from_name(text: &str) -> Option<Self> {
        match text {
            "sequential" | "seq" => Some(Self::Sequential),
            "random" => Some(Self::Random),
            "zipf" => Some(Self::Zipf),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    /// The canonical word for this value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Random => "random",
            Self::Zipf => "zipf",
            Self::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `from_name` accepts exactly `NAMES`, and `name` round-trips through it.
    fn round_trip<T: Copy + PartialEq + core::fmt::Debug>(
        names: &[&str],
        from_name: fn(&str) -> Option<T>,
        name: fn(T) -> &'static str,
    ) {
        for n in names {
            let v = from_name(n).unwrap_or_else(|| panic!("{n} is in NAMES but from_name refuses it"));
            assert_eq!(from_name(name(v)), Some(v));
            assert!(names.contains(&name(v)));
            assert_eq!(from_name(&n.to_uppercase()), None, "names are case-sensitive");
        }
        assert_eq!(from_name(""), None);
        assert_eq!(from_name("bogus"), None);
    }

    #[test]
    fn every_choice_round_trips() {
        round_trip(LogLevel::NAMES, LogLevel::from_name, LogLevel::name);
        round_trip(MemMap::NAMES, MemMap::from_name, MemMap::name);
        round_trip(Workload::NAMES, Workload::from_name, Workload::name);
        round_trip(Compressor::NAMES, Compressor::from_name, Compressor::name);
        round_trip(TmemBackends::NAMES, TmemBackends::from_name, TmemBackends::name);
        round_trip(Backend::NAMES, Backend::from_name, Backend::name);
        round_trip(SwapPattern::NAMES, SwapPattern::from_name, SwapPattern::name);
        round_trip(EphemeralReclaim::NAMES, EphemeralReclaim::from_name, EphemeralReclaim::name);
        round_trip(SwapMode::NAMES, SwapMode::from_name, SwapMode::name);
        round_trip(SwapDevice::NAMES, SwapDevice::from_name, SwapDevice::name);
        round_trip(SwapSharing::NAMES, SwapSharing::from_name, SwapSharing::name);
        round_trip(BlkFailOp::NAMES, BlkFailOp::from_name, BlkFailOp::name);
        round_trip(BlkFailKind::NAMES, BlkFailKind::from_name, BlkFailKind::name);
        round_trip(FailSchedule::NAMES, FailSchedule::from_name, FailSchedule::name);
        round_trip(SwapCacheMode::NAMES, SwapCacheMode::from_name, SwapCacheMode::name);
    }

    #[test]
    fn the_alias_names_its_canonical_value() {
        assert_eq!(SwapPattern::from_name("seq"), Some(SwapPattern::Sequential));
        assert_eq!(SwapPattern::Sequential.name(), "sequential");
        assert_eq!(Workload::EVERY.iter().map(|w| w.name()).collect::<Vec<_>>(), Workload::NAMES);
    }
}

choice! {
    /// `ephemeral_reclaim`: how tmem makes room among ephemeral (cleancache) pages.
    EphemeralReclaim {
        /// Drop the oldest pages one at a time (store order).
        Objects = "objects",
        /// Evict whole zbud frames, oldest first (zcache's `zbud_evict_pages`).
        ZbudFrames = "zbud_frames",
    }
}

choice! {
    /// `swap_mode`: whose memory the compressed pool uses.
    SwapMode {
        /// Resident pages + pool frames <= swap_mem: the pool comes out of the same RAM (Linux).
        Equal = "equal",
        /// Resident pages <= swap_mem, the pool on top of it.
        Fixed = "fixed",
    }
}

choice! {
    /// `swap_device`: where swapped pages go.
    SwapDevice {
        /// The virtio-blk swap disk, with frontswap and tmem in front of it.
        Disk = "disk",
        /// zram: a compressed RAM disk over zsmalloc, as the swap device itself.
        Zram = "zram",
    }
}

choice! {
    /// `swap_sharing`: how the workers of a multi-CPU swap run (`swap_cpus` > 1) share the region.
    SwapSharing {
        /// Each CPU has its own slice of the region's pages.
        Split = "split",
        /// Every CPU uses every page (its own stripe of each), so reclaim unmaps pages others use.
        Shared = "shared",
    }
}

choice! {
    /// `blk_fail_op`: which swap-disk requests `blk_fail_every` counts.
    BlkFailOp {
        Any = "any",
        Read = "read",
        Write = "write",
    }
}

choice! {
    /// `blk_fail_kind`: how an injected swap-disk fault shows.
    BlkFailKind {
        /// An I/O error: that request fails, the disk goes on.
        Error = "error",
        /// The request never completes: the disk is marked broken.
        Timeout = "timeout",
        /// The device answers another request: the disk is marked broken.
        WrongToken = "wrong_token",
    }
}

choice! {
    /// `fail_frame_schedule`: which pool and workload frame allocations `fail_frame_every=N` fails.
    FailSchedule {
        /// Exactly the Nth, 2Nth, … (Linux's fault-injection `interval`). Reproducible, but it can fall
        /// in step with a caller that makes a fixed number of allocations between retries.
        Every = "every",
        /// Each with chance 1/N, drawn from a fixed seed (Linux's `probability`): the same failures for
        /// the same run on one CPU, and not periodic, so it cannot lock step with a retry loop.
        Random = "random",
    }
}

choice! {
    /// `swap_cache`: what a swap-in does with the page's swap copy.
    SwapCacheMode {
        /// Keep slot and copy until the page is written (Linux's swap cache).
        On = "on",
        /// Drop them at once (zswap's `exclusive_loads`): every reclaim stores again.
        Exclusive = "exclusive",
    }
}
