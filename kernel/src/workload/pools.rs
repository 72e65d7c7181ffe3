//! The pools part of the `cargo xtask run` demo: store a set of real or synthetic pages in zsmalloc and
//! in zbud, on real frames through kmap, read every page back, compact, free, and report the figures
//! zram and zswap report (`orig_data_size`, `compr_data_size`, `mem_used_total`, `same_pages`, …).
//!
//! The pages are the ramdisk's when one was given (`cargo xtask run --pages FILE`), else 2048 synthetic
//! pages (`pagedata`): one in ten a zero page, the rest compressing to between 10 % and 100 %.
//! Options: `compressor=lz4|deflate`, `deflate_level=1..10` (default 1).

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec::Vec;

use compress::Algorithm;
use kopts::{Compressor, Settings};
use xcfmalloc::Xcfmalloc;
use xvmalloc::Xvmalloc;
use zbud::Zbud;
use zpool::{MapMode, ZPool};
use zsmalloc::Zsmalloc;
use zstats::{PoolReport, Report};
use zstore::{Entry, Policy, StoreError, StoreStats, Zstore};

use crate::arch::tsc::{centi_ns, rdtsc};
use crate::init::BootFacts;
use crate::mm::KernelMemory;
use crate::println;
use crate::zcache::streams::with_stream;

use super::report::Failures;

type Page = [u8; 4096];

/// What one pool did with the demo's pages.
#[derive(Debug)]
pub struct PoolRun {
    pub pool: &'static str,
    /// The store's counters with every page held.
    pub full: StoreStats,
    /// Pages that did not read back identical (must be 0).
    pub mismatches: u64,
    /// Pool pages after freeing two thirds of the pages, before and after compaction.
    pub sparse_pages: u64,
    pub compacted_pages: u64,
    /// Mean cost per page in nanoseconds (TCG time: compare pools with each other, not with hardware).
    pub store_ns: u64,
    pub load_ns: u64,
}

/// The demo's pages and where they came from.
fn pages(facts: &BootFacts) -> (Cow<'static, [Page]>, &'static str) {
    if let Some(r) = facts.ramdisk.as_ref().filter(|r| r.verified != Some(false) && r.pages() > 0) {
        return (Cow::Borrowed(r.bytes().as_chunks::<4096>().0), "the ramdisk");
    }
    let mut v = alloc::vec![[0u8; 4096]; 2048];
    for (i, p) in v.iter_mut().enumerate() {
        pagedata::mixed_page(i as u64, p);
    }
    (Cow::Owned(v), "2048 synthetic pages (10 % zero, the rest compressing to 10-100 %)")
}

/// The compressor the options ask for (`compressor=lz4|deflate`, `deflate_level=N`).
pub fn algorithm(settings: &Settings) -> Algorithm {
    match settings.compressor() {
        Compressor::Lz4 => Algorithm::Lz4,
        Compressor::Deflate => Algorithm::Deflate { level: settings.deflate_level() },
    }
}

fn ns_per(cycles: u64, n: usize) -> u64 {
    centi_ns(cycles / n.max(1) as u64) / 100
}

/// Store every page in `pool`, read each back, free two thirds and compact, read the rest back, free
/// them. `corrupt`: flip a byte of the Nth stored object first (the `corrupt_stored` test option), so
/// the read-back must catch it.
fn run_one<P: ZPool>(
    pool: P,
    policy: Policy,
    alg: Algorithm,
    pages: &[Page],
    corrupt: Option<u64>,
) -> Result<PoolRun, StoreError> {
    let mut z = Zstore::new(pool, policy);
    let mut entries: Vec<(usize, Entry)> = Vec::with_capacity(pages.len());
    let t = rdtsc();
    for (i, p) in pages.iter().enumerate() {
        match with_stream(alg, |c| z.store(c, p)).map_err(StoreError::Compressor)? {
            Ok(e) => entries.push((i, e)),
            Err(StoreError::Incompressible { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let store_ns = ns_per(rdtsc() - t, pages.len());
    let full = z.stats();
    if let Some(n) = corrupt {
        corrupt_one(&mut z, &entries, n)?;
    }
    let mut out = [0u8; 4096];
    let mut mismatches = 0;
    let t = rdtsc();
    for (i, e) in &entries {
        let ok = with_stream(alg, |c| z.load(c, e, &mut out)).map_err(StoreError::Compressor)?;
        if ok.is_err() || out != pages[*i] {
            mismatches += 1;
        }
    }
    let load_ns = ns_per(rdtsc() - t, entries.len());
    // Free two pages of every three, then compact what is left.
    let mut keep = Vec::with_capacity(entries.len() / 3 + 1);
    for (k, (i, e)) in entries.into_iter().enumerate() {
        if k % 3 == 0 { keep.push((i, e)) } else { z.free(e)? }
    }
    let sparse_pages = z.pool().total_pages();
    let compacted_pages = z.compact()?;
    for (i, e) in &keep {
        let ok = with_stream(alg, |c| z.load(c, e, &mut out)).map_err(StoreError::Compressor)?;
        if ok.is_err() || out != pages[*i] {
            mismatches += 1;
        }
    }
    for (_, e) in keep {
        z.free(e)?;
    }
    Ok(PoolRun { pool: z.pool().name(), full, mismatches, sparse_pages, compacted_pages, store_ns, load_ns })
}

/// The `corrupt_stored=N` test option: flip one byte of the Nth (1-based) object stored in the pool.
fn corrupt_one<P: ZPool>(z: &mut Zstore<P>, entries: &[(usize, Entry)], n: u64) -> Result<(), StoreError> {
    let handle = entries.iter().filter_map(|(_, e)| e.handle()).nth(n.saturating_sub(1) as usize);
    let Some(h) = handle else {
        println!("  corrupt_stored={n}: fewer objects than that in the pool; nothing corrupted");
        return Ok(());
    };
    z.pool_mut().map(h, MapMode::ReadWrite, |b| b[b.len() / 2] ^= 0x5a)?;
    println!("  corrupt_stored={n}: flipped a byte of pool object {h:?}");
    Ok(())
}

/// Run the demo on both pools, print the human lines, and fill the report's `pools`. A pool that fails,
/// and every page that does not read back intact, is a failure of the run.
pub fn run(facts: &BootFacts, report: &mut Report, failures: &mut Failures) {
    let settings = &facts.settings;
    let alg = algorithm(settings);
    let (pages, source) = pages(facts);
    println!("pools: {} pages from {source}, compressor {alg:?}, policy {:?}", pages.len(), Policy::DEFAULT);
    let corrupt = settings.corrupt_stored();
    let runs = [
        run_one(Zsmalloc::new(KernelMemory::new(frame::Owner::ZSMALLOC)), Policy::DEFAULT, alg, &pages, corrupt),
        run_one(Zbud::new(KernelMemory::new(frame::Owner::ZBUD)), Policy::DEFAULT, alg, &pages, corrupt),
        run_one(Xvmalloc::new(KernelMemory::new(frame::Owner::XVMALLOC)), Policy::DEFAULT, alg, &pages, corrupt),
        run_one(Xcfmalloc::new(KernelMemory::new(frame::Owner::XCFMALLOC)), Policy::DEFAULT, alg, &pages, corrupt),
    ];
    for (name, r) in ["zsmalloc", "zbud", "xvmalloc", "xcfmalloc"].into_iter().zip(runs) {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                failures.add(format!("pools: {name}: {e}"));
                continue;
            }
        };
        let s = &r.full;
        let pool_pages = s.mem_used_total / 4096;
        let in_pool = s.stored_pages - s.same_pages;
        let ideal = s.compr_data_size as f64 / 4096.0;
        println!(
            "  {:<9} stored {} ({} same-filled, {} whole), refused {} poor; orig {} KiB, compr {} KiB, \
             mem_used {} KiB ({pool_pages} pages)",
            r.pool,
            s.stored_pages,
            s.same_pages,
            s.huge_pages,
            s.reject_compress_poor,
            s.orig_data_size / 1024,
            s.compr_data_size / 1024,
            s.mem_used_total / 1024,
        );
        println!(
            "  {:<9} {:.3} pool pages per pooled page, {:+.1} % vs ideal; after freeing 2/3: {} pages, \
             compaction freed {}; {} ns/page store, {} ns/page load (TCG); mismatches {}",
            "",
            pool_pages as f64 / in_pool.max(1) as f64,
            (pool_pages as f64 / ideal - 1.0) * 100.0,
            r.sparse_pages,
            r.compacted_pages,
            r.store_ns,
            r.load_ns,
            r.mismatches
        );
        failures
            .nonzero(r.mismatches, || format!("pools: {}: {} pages did not read back intact", r.pool, r.mismatches));
        report.pools.push(pool_report(r.pool, alg, pages.len(), &r));
    }
    zram_parity(facts, alg, &pages, report, failures);
}

/// A pool run as a report object, named `pool`.
fn pool_report(pool: &str, alg: Algorithm, pages: usize, r: &PoolRun) -> PoolReport {
    let s = &r.full;
    PoolReport {
        pool: pool.into(),
        compressor: alg.name().into(),
        pages: pages as u64,
        stored_pages: s.stored_pages,
        same_pages: s.same_pages,
        huge_pages: s.huge_pages,
        reject_compress_poor: s.reject_compress_poor,
        reject_alloc_fail: s.reject_alloc_fail,
        orig_data_size: s.orig_data_size,
        compr_data_size: s.compr_data_size,
        mem_used_total: s.mem_used_total,
        sparse_pages: r.sparse_pages,
        pages_compacted: r.compacted_pages,
        store_ns: r.store_ns,
        load_ns: r.load_ns,
        mismatches: r.mismatches,
    }
}

/// Linux 6.18's zram (zsmalloc, chain 8, lz4) on the perl sample, `mm_stat` read after writing its 2048
/// pages (`shared/anchors.md`, "A real Linux on the same pages"): orig, compr, mem_used, same, huge.
const LINUX_ZRAM_SAMPLE: (u64, u64, u64, u64, u64) = (8_388_608, 2_777_608, 4_378_624, 10, 1);
/// FNV-1a 64 of the perl sample's 2048 pages: the Linux row is shown only beside the same pages.
const PERL_SAMPLE_FNV: u64 = 0x3310_86d6_6740_0915;

/// zram parity: the same pages through zram's rule (a page whose stored bytes reach zsmalloc's huge class
/// size is kept whole, as zram's `huge_pages`), in zsmalloc at chains 4 and 8 and in zbud, printed in
/// zram's `mm_stat` terms beside Linux's own zram on the same pages when they are the perl sample.
fn zram_parity(facts: &BootFacts, alg: Algorithm, pages: &[Page], report: &mut Report, failures: &mut Failures) {
    println!("pools: zram parity (mm_stat): zram's rule, stored bytes ≥ the huge class size kept whole");
    println!(
        "  {:<28} {:>12} {:>12} {:>12} {:>6} {:>6} {:>6} {:>8}",
        "pool", "orig_data", "compr_data", "mem_used", "pages", "same", "huge", "÷ideal"
    );
    let row = |name: &str, orig: u64, compr: u64, used: u64, same: u64, huge: u64| {
        println!(
            "  {name:<28} {orig:>12} {compr:>12} {used:>12} {:>6} {same:>6} {huge:>6} {:>8.3}",
            used / 4096,
            used as f64 / compr.max(1) as f64
        );
    };
    for chain in [4usize, 8] {
        let cfg = zsmalloc::Config { max_pages_per_zspage: chain, ..zsmalloc::Config::DEFAULT };
        let pool = match Zsmalloc::with_config(KernelMemory::new(frame::Owner::ZSMALLOC), cfg) {
            Ok(p) => p,
            Err(e) => {
                failures.add(format!("pools: zsmalloc chain {chain}: {e:?}"));
                continue;
            }
        };
        let policy = Policy::zram(pool.huge_class_size());
        let name = format!("zsmalloc chain {chain} (zram rule)");
        match run_one(pool, policy, alg, pages, None) {
            Ok(r) => {
                let s = &r.full;
                row(&name, s.orig_data_size, s.compr_data_size, s.mem_used_total, s.same_pages, s.huge_pages);
                failures.nonzero(r.mismatches, || {
                    format!("pools: {name}: {} pages did not read back intact", r.mismatches)
                });
                report.pools.push(pool_report(&name, alg, pages.len(), &r));
            }
            Err(e) => failures.add(format!("pools: {name}: {e}")),
        }
    }
    // zbud holds at most PAGE_SIZE - its header in one object: no whole pages, so poor pages are refused.
    let huge8 = zsmalloc::huge_class_size(8).unwrap_or(PAGE_BYTES);
    let policy = Policy { threshold: huge8 - 1, poor: zstore::PoorPage::Reject };
    let name = "zbud (poor pages refused)";
    match run_one(Zbud::new(KernelMemory::new(frame::Owner::ZBUD)), policy, alg, pages, None) {
        Ok(r) => {
            let s = &r.full;
            row(name, s.orig_data_size, s.compr_data_size, s.mem_used_total, s.same_pages, s.huge_pages);
            failures
                .nonzero(r.mismatches, || format!("pools: {name}: {} pages did not read back intact", r.mismatches));
            report.pools.push(pool_report(name, alg, pages.len(), &r));
        }
        Err(e) => failures.add(format!("pools: {name}: {e}")),
    }
    let sample = facts.ramdisk.as_ref().is_some_and(|r| fnv1a::fnv1a64(r.bytes()) == PERL_SAMPLE_FNV);
    if sample && alg == Algorithm::Lz4 {
        let (o, c, u, same, huge) = LINUX_ZRAM_SAMPLE;
        row("Linux 6.18 zram (chain 8)", o, c, u, same, huge);
        println!(
            "  the differences, by mechanism: chain length (each size class keeps one partly filled zspage), \
             our 5-byte frame per object (algorithm id + Adler-32), lz4_flex vs Linux's lib/lz4 (docs/measuring.md)"
        );
    }
}

const PAGE_BYTES: usize = 4096;
