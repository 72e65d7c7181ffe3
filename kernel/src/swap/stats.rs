//! The swap subsystem's counters. They are the shared report type itself (`zstats::SwapStatsReport`,
//! names after Linux's `/proc/vmstat`), so what the kernel counts is what `@@stats` prints and xtask
//! reads back: a key cannot drift from its field.

pub use zstats::SwapStatsReport as SwapStats;
