//! The swap subsystem's algorithms, without the hardware: what the kernel's `swap` module does with
//! page tables, frames and disks, minus the page tables, frames and disks.
//!
//! # The journey of a swapped page (docs/swap.md tells it at length)
//!
//! ```text
//!  workload touches page p ──► #PF ──► PTE empty?       ──► zero-filled frame, mapped
//!                                       PTE swap entry? ──► frontswap load, else disk read;
//!                                                           SwapCache::swapped_in: keep slot + copy, or release
//!  before mapping: budget::make_room: R + 1 + P > N ──► Clock::victim picks q (accessed bit clear)
//!                        ──► kept slot, else SwapMap::alloc gives slot s ──► PTE(q) := SwapEntry { ty, offset: s }
//!                        ──► SwapCache::reclaim(q, D): clean ──► nothing stored; else frontswap store (tmem),
//!                            or the disk if tmem refused; the pool grew, so make_room looks again
//! ```
//!
//! | module | what | Linux |
//! |---|---|---|
//! | [`entry`] | a swap entry (type, offset) packed into a non-present PTE | `swp_entry_t`, `arch/x86/include/asm/pgtable_64.h` |
//! | [`slots`] | the swap-slot bitmap of one swap device, next-fit | `swap_map`, `scan_swap_map_slots` |
//! | [`clock`] | second-chance (clock) victim selection over the resident pages | the active/inactive lists, `page_referenced` |
//! | [`pattern`] | sequential, uniform random and Zipf access streams | — (the workloads of the papers) |
//! | [`budget`] | equal-memory accounting (resident + pool frames ≤ N) and the reclaim loop that keeps it | `mem_cgroup` charging of zswap, `zswap_shrink` |
//! | [`cache`] | the swap cache: a swapped-in page keeps its slot and copy until written | `add_to_swap_cache`, `PageSwapCache`, zswap's `exclusive_loads` |
//!
//! `tests/model.rs` runs the budget and the swap cache together against a fake tmem pool and a fake
//! disk for hundreds of thousands of random steps, checking R + P ≤ N after every step and every read's
//! version.
//!
//! Everything here is `no_std` and safe; the kernel supplies the accessed bits and the memory.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod budget;
pub mod cache;
pub mod clock;
pub mod entry;
pub mod pattern;
pub mod slots;

pub use budget::{Accounting, BudgetError, FixedBudget, MAX_FAILED_SWAPOUTS, MemoryBudget, Reclaimer, Room, make_room};
pub use cache::{Backing, CacheError, CacheMode, SwapCache, SwapCacheStats, SwapCopy};
pub use clock::Clock;
pub use entry::SwapEntry;
pub use pattern::{Access, Pattern, Workload};
pub use slots::{SlotError, SwapMap};
