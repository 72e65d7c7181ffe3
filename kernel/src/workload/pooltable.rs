//! The allocator table in the kernel: every pool (zbud, xvmalloc, xcfmalloc, zsmalloc at each chain
//! 1..=16) on the same objects, over real frames through kmap — the host's `pool-table` run in here.
//!
//! # Why
//!
//! The host table measures the pools over a `Vec`-backed arena. The claim that its figures describe the
//! kernel holds only if the kernel, with its buddy allocator and its temporary mappings, gets the same
//! counts. So this file owns no algorithm: the workloads and the measuring are the `no_std` crate
//! `pooltable`, the very code the host binary runs; here it runs over [`KernelMemory`], timed with the
//! TSC, and its pool-page counts must equal the host's row for row (same algorithms, same sizes).
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | row | one pool on one workload: `pooltable::Measured`, reported as a `zstats::PoolTableRow` |
//! | pool pages | frames held with every object live, xcfmalloc's reserve apart (`+N reserve`) |
//! | ÷ stored | pool pages ÷ stored objects; *ideal* is stored bytes ÷ 4096 ÷ stored |
//! | malloc ns, free ns | TSC time of `Trial::fill` (malloc + write loop), resp. `Trial::free_all`, ÷ offered objects; guest time under TCG, for comparing pools with each other only |
//!
//! # The workloads
//!
//! | key | objects |
//! |---|---|
//! | `p75` | the first [`TABLE_OBJECTS`] pages of 75 % ± 3 % (`pooltable::three_quarters`) |
//! | `perl`, `perl_x8` | the ramdisk's pages when they are the perl sample (FNV-1a 64 = `pooltable::PERL_SAMPLE_FNV`), compressed with LZ4, once and 8 times over |
//! | `ramdisk`, `ramdisk_x8` | the same from a ramdisk holding other pages (its tail short of a page ignored) |
//! | `mixed`, `mixed_x8` | without a ramdisk: 2048 `pagedata::mixed_page` pages, as the pools demo uses |
//! | `uniform` | the first [`TABLE_OBJECTS`] sizes uniform in 2048..=4096 B (`pooltable::uniform`) |
//!
//! # Worked example
//!
//! `cargo xtask run --pages data/perl-heap.pages.gz --workload pools` boots with the perl sample as the
//! ramdisk; this table then prints, among its 76 rows, `| (a) 10000 pages at 75 % | xcfmalloc | 10,000 |
//! 7,693 (+31 reserve) | 0.769 | ...` — the host table's row (its header's worked example), because both
//! offered the same 10,000 objects in the same order to the same xcfmalloc code. The report's
//! `pool_table[]` holds `{"workload":"p75","pool":"xcfmalloc","stored":10000,"pool_pages":7693,
//! "reserve_pages":31,...}`, which an xtask check compares with `pools.json`'s `rows[]` of
//! `pool-table --objects 10000` by (`workload`, `pool`).
//!
//! # Contracts
//!
//! - A workload that cannot be built, or a pool that loses data, refuses a `malloc` for a reason other
//!   than size, or holds pages after every object is freed, is a failure of the run; its row is absent.
//! - Every pool runs in a fresh pool over fresh frames (the pool's own owner, `frame::Owner::ZSMALLOC`, `ZBUD`, …) and gives them all back.
//! - The counts depend only on the objects and the pools, never on timing or on the frames handed out.

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec::Vec;

use ::pooltable::{Measured, PoolKind, Sample, Trial, Workload};
use zstats::{PoolTableRow, Report};

use crate::arch::tsc::{centi_ns, rdtsc};
use crate::init::BootFacts;
use crate::mm::KernelMemory;
use crate::println;

use super::report::Failures;

type Page = [u8; 4096];

/// Objects in (a) and (c): the host's 10,000, so the kernel's rows compare with the host's default
/// table. A smaller N offers the first N of the same objects; the host then needs `--objects N`.
pub const TABLE_OBJECTS: usize = ::pooltable::OBJECTS;

/// Pages of the synthetic (b) when no ramdisk was given (as the pools demo).
const MIXED_PAGES: usize = 2048;

/// (b)'s pages and how the table names them: the perl sample, other ramdisk pages, or synthetic pages.
fn sample_pages(facts: &BootFacts) -> (Cow<'static, [Page]>, &'static str, &'static str, &'static str) {
    if let Some(r) = facts.ramdisk.as_ref().filter(|r| r.verified != Some(false) && r.pages() > 0) {
        let pages = r.bytes().as_chunks::<4096>().0;
        return if fnv1a::fnv1a64(r.bytes()) == ::pooltable::PERL_SAMPLE_FNV {
            (Cow::Borrowed(pages), "perl", "perl sample", "the perl sample (data/perl-heap.pages.gz)")
        } else {
            (Cow::Borrowed(pages), "ramdisk", "ramdisk", "the ramdisk's pages")
        };
    }
    let mut v = alloc::vec![[0u8; 4096]; MIXED_PAGES];
    for (i, p) in v.iter_mut().enumerate() {
        pagedata::mixed_page(i as u64, p);
    }
    (Cow::Owned(v), "mixed", "2048 mixed pages", "2048 pagedata::mixed_page pages (no ramdisk)")
}

/// One row: the figures and the two loops' TSC cycles.
struct Row {
    workload: usize,
    m: Measured,
    fill_cycles: u64,
    free_cycles: u64,
}

/// `kind` on `w` over fresh kernel frames, timing `fill` and `free_all` with the TSC.
fn measure(kind: PoolKind, w: &Workload) -> Result<(Measured, u64, u64), alloc::string::String> {
    let owner = match kind {
        PoolKind::Zbud => frame::Owner::ZBUD,
        PoolKind::Xvmalloc => frame::Owner::XVMALLOC,
        PoolKind::Xcfmalloc => frame::Owner::XCFMALLOC,
        PoolKind::Zsmalloc { .. } => frame::Owner::ZSMALLOC,
    };
    let mut t = Trial::new(kind, KernelMemory::new(owner), w)?;
    let start = rdtsc();
    t.fill()?;
    let fill_cycles = rdtsc() - start;
    t.verify()?;
    let start = rdtsc();
    t.free_all()?;
    let free_cycles = rdtsc() - start;
    Ok((t.finish()?, fill_cycles, free_cycles))
}

/// `1234567` as `1,234,567`, as the host table prints counts.
fn thousands(v: u64) -> alloc::string::String {
    let digits = format!("{v}");
    let mut s = alloc::string::String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

fn ns_per(cycles: u64, n: u64) -> u64 {
    centi_ns(cycles / n.max(1)) / 100
}

/// Build the standard workloads, measure every pool on each, print the markdown table and fill
/// `report.pool_table`. Every failure (a workload not built, a pool that lost data or kept pages) is
/// added to `failures`; the other rows still run.
pub fn run(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let (pages, key, name, what) = sample_pages(facts);
    println!(
        "pool table: every pool on the same objects ({TABLE_OBJECTS} at 75 %, {} pages of {what} x1 and x{}, \
         {TABLE_OBJECTS} uniform), on real frames",
        pages.len(),
        ::pooltable::PERL_REPEAT
    );
    let started = rdtsc();
    let mut labels: Vec<alloc::string::String> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let sample = Sample { key, name, what, pages: &pages };
    let built = ::pooltable::for_each_standard(TABLE_OBJECTS, sample, |w| {
        labels.push(w.label.clone());
        for note in &w.notes {
            println!("  {}: {note}", w.label);
        }
        for kind in PoolKind::all() {
            match measure(kind, w) {
                Ok((m, fill_cycles, free_cycles)) => {
                    report.pool_table.push(PoolTableRow {
                        workload: w.key.clone(),
                        pool: kind.key(),
                        stored: m.stored,
                        refused: m.refused,
                        pool_pages: m.pool_pages(),
                        reserve_pages: m.reserve_pages,
                        object_bytes: m.stored_bytes,
                        metadata_bytes: m.metadata(),
                    });
                    rows.push(Row { workload: labels.len() - 1, m, fill_cycles, free_cycles });
                }
                Err(e) => failures.add(format!("pool table: {}: {}: {e}", w.key, kind.label())),
            }
        }
        Ok(())
    });
    if let Err(e) = built {
        failures.add(format!("pool table: building the workloads: {e}"));
    }
    println!();
    println!(
        "| workload | pool | stored | pool pages | pages / stored | ideal | overhead vs ideal | metadata bytes (in pages + side) | malloc ns | free ns | refused |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in &rows {
        let m = &r.m;
        let pool_pages = match m.reserve_pages {
            0 => thousands(m.pool_pages()),
            n => format!("{} (+{n} reserve)", thousands(m.pool_pages())),
        };
        println!(
            "| {} | {} | {} | {pool_pages} | {:.3} | {:.3} | {:+.1} % | {} ({} + {}) | {} | {} | {} |",
            labels[r.workload],
            m.pool.label(),
            thousands(m.stored),
            m.pages_per_stored(),
            m.ideal_per_stored(),
            m.overhead_pct(),
            thousands(m.metadata()),
            thousands(m.metadata_in_pages),
            thousands(m.metadata_side),
            ns_per(r.fill_cycles, m.offered),
            ns_per(r.free_cycles, m.offered),
            m.refused
        );
    }
    println!();
    println!(
        "pool table: {} rows in {} ms of guest time (ns columns: TCG time, compare pools with each other only)",
        rows.len(),
        centi_ns(rdtsc() - started) / 100_000_000
    );
}
