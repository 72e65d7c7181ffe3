//! pooltable: the allocator table's core — every pool on the same objects, counted. The host's
//! `pool-table` (`cargo xtask bench --pools`) and the kernel's `--workload pools` run this same code, so
//! their pool-page counts agree exactly: the same objects (same algorithms, same sizes) into the same
//! pools, over a host arena there and over real frames through kmap here.
//!
//! # Why
//!
//! zcache's history is a history of allocators: xvmalloc (2009, zram), xcfmalloc (2011, proposed for
//! zcache), zbud (2013, zswap) and zsmalloc (2012, zram and later zswap) were each argued for with a
//! density figure on some workload. Here they run on the *same* objects, in fresh pools over the same kind
//! of memory, so the figures differ only by the pools' mechanisms: where an object may lie (one page, two
//! blocks anywhere, one zspage of N pages), how sizes are rounded (4, 8, 16 or 64 bytes), and what each
//! keeps beside the data (headers in the pages, tables on the heap).
//!
//! The crate is `no_std` + `alloc` and keeps no clock: its counts are deterministic, and whoever runs it
//! times the phases of a [`Trial`] with its own clock (`std::time::Instant` on the host, the TSC in the
//! kernel).
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | object | one `malloc`'d byte string: a page compressed with LZ4 through [`compress::Compressor`] (its 5-byte frame included), or a size of workload (c) filled with pseudo-random bytes |
//! | workload | the objects offered, in order ([`Workload`]); (a) 75 % pages, (b) the perl sample ×1 and ×8, (c) uniform sizes, (d) a page file |
//! | offered | objects the workload asks each pool to hold |
//! | stored | objects the pool took; `offered − stored` were *refused* as larger than the pool's `max_size` |
//! | pool pages | frames the pool holds with every stored object live; for xcfmalloc without its reserve of empty pages ([`Measured::reserve_pages`]), as the 2011 patch's `xcf_get_total_size_bytes` counted |
//! | ideal | the stored bytes packed without a byte lost: `stored bytes ÷ 4096` pages |
//! | overhead | pool pages ÷ ideal pages − 1 |
//! | metadata | bookkeeping bytes: *in pages* (headers inside the pool's frames, so already in pool pages) and *side* (heap tables beside them, not in pool pages) — see [`PoolKind::metadata_rule`] |
//! | trial | one pool on one workload, in four phases the caller may time: [`Trial::fill`], [`Trial::verify`], [`Trial::free_all`], [`Trial::finish`] |
//!
//! # The pools
//!
//! | pool | largest object | where an object lies | metadata counted |
//! |---|---|---|---|
//! | zsmalloc chain N, N = 1..=16 | 4096 B | a place of its size class (16 B steps) in a zspage of up to N pages; may span two pages | 8-B in-object header per object (not in the huge classes) + `ZsStats::metadata_bytes` (side table, copy buffer) |
//! | zbud | 4032 B | first or last buddy of one page, 64-B chunks | 64-B header chunk per page + a 56-B side-table entry per page (zbud's header table; computed here, zbud has no counter) |
//! | xvmalloc | 4092 B | a block inside one page, 4-B header, 4-B rounding | `XvStats::metadata_bytes`: 4-B block headers + side tables |
//! | xcfmalloc | 4080 B | one or two 64-B-unit blocks anywhere, 16-B header each | `Xcfmalloc::metadata_bytes`: 16-B headers of used blocks + 24-B descriptors of all blocks |
//!
//! # The standard workloads ([`standard_workloads`], [`for_each_standard`])
//!
//! | key | objects | offered |
//! |---|---|---|
//! | `p75` | the first [`OBJECTS`] `ratio_page(seed, THREE_QUARTERS_FRESH)` pages, seeds 0, 1, 2, …, whose LZ4 stored size lies in [`BAND_75`] | [`OBJECTS`] |
//! | `perl` | the given pages ([`Sample`]; the perl sample, or another key for other pages) compressed with LZ4; same-filled pages are not objects | ≤ pages |
//! | `perl_x8` | the same objects [`PERL_REPEAT`] times over | 8 × `perl` |
//! | `uniform` | [`OBJECTS`] sizes uniform in [`UNIFORM_SIZES`] (xorshift64* from [`UNIFORM_SEED`]), random bytes | [`OBJECTS`] |
//!
//! # Method
//!
//! For each workload and pool, in a fresh pool over fresh memory: `malloc` every object in order and write
//! its bytes through a [`MapMode::WriteOnly`] mapping ([`Trial::fill`]); take the pool's pages and
//! metadata with every object live, then read every stored object back (`ReadOnly`) and compare it with
//! what was written ([`Trial::verify`]); `free` every object in allocation order ([`Trial::free_all`]);
//! the pool must then hold no page — xcfmalloc none beyond its reserve, which is then released and must
//! leave none ([`Trial::finish`]).
//!
//! # Worked example
//!
//! 100 objects of 3072 bytes into zbud: each takes 48 chunks of the 63 a page offers, so no two share a
//! page: 100 pool pages, 1.000 per stored object, ideal 0.750 (307,200 B ÷ 4096 = 75 pages), overhead
//! +33.3 %, metadata 100 × (64 + 56) = 12,000 B (test `zbud_takes_a_page_for_every_object_above_a_half`).
//! Four of them into xcfmalloc take 49 of a page's 64 units each (3072 + a 16-B header, rounded to 64),
//! the later ones in two blocks (the rest of the previous page, then a new one): 4 pages in use, and 31
//! empty reserve pages held apart (refilled to 32 before each malloc; the last malloc took one) — test
//! `xcfmalloc_reserve_is_held_apart_from_the_ratio` follows it block by block.
//!
//! # Contracts
//!
//! - A workload that cannot be built (a compressor error, a page that does not decompress to itself, pages
//!   that are all same-filled) is an `Err` naming the cause; nothing falls back to other pages.
//! - A pool error other than `TooLarge` on `malloc`, a mismatch on read-back, or pages left after every
//!   object was freed is an `Err`: the figures of a pool that lost data are not reported.
//! - A [`Trial`]'s phases run in order, each once; a phase called out of order is an `Err`, not a panic.
//! - Nothing here reads a clock or prints: the counts depend only on the objects and the pools.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use compress::{Algorithm, Compressor};
use pagedata::{Rng, THREE_QUARTERS_FRESH, ratio_page};
use pagemem::{FrameSource, PageMemory};
use xcfmalloc::Xcfmalloc;
use xvmalloc::Xvmalloc;
use zbud::Zbud;
use zpool::{Handle, MapMode, PoolError, ZPool};
use zsmalloc::Zsmalloc;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// One page.
pub type Page = [u8; PAGE_SIZE];

/// Bytes of one zbud side-table entry (zbud's module header: "one 56-byte entry per slot"); zbud keeps
/// no counter of its table, so [`PoolKind::Zbud`]'s side metadata is this times its pages.
pub const ZBUD_SIDE_ENTRY: u64 = 56;

/// The 75 % band of workload (a): stored sizes within 75 % ± 3 % of a page, 2950..=3194 bytes.
pub const BAND_75: core::ops::RangeInclusive<usize> = 2950..=3194;

/// Workload (c)'s sizes: uniform in 2048..=4096 bytes, the seed's "> PAGE_SIZE / 2" sets.
pub const UNIFORM_SIZES: core::ops::RangeInclusive<usize> = 2048..=4096;

/// FNV-1a 64 of the perl sample's 2048 unpacked pages (`data/perl-heap.pages.gz`, the bytes Linux's zram
/// was measured on): the kernel names its ramdisk's pages workload `perl` only when they hash to this.
pub const PERL_SAMPLE_FNV: u64 = 0x3310_86d6_6740_0915;

/// Objects in the standard (a) and (c).
pub const OBJECTS: usize = 10_000;

/// The perl sample this many times over in (b)'s second workload.
pub const PERL_REPEAT: usize = 8;

/// Seed of (c)'s sizes and bytes.
pub const UNIFORM_SEED: u64 = 0x5eed_2048_4096;

/// A pool configuration under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Zbud,
    Xvmalloc,
    Xcfmalloc,
    /// zsmalloc with `max_pages_per_zspage = chain`.
    Zsmalloc {
        chain: usize,
    },
}

impl PoolKind {
    /// zbud, xvmalloc, xcfmalloc, then zsmalloc at every chain it accepts (1..=16).
    pub fn all() -> Vec<PoolKind> {
        let mut v = vec![PoolKind::Zbud, PoolKind::Xvmalloc, PoolKind::Xcfmalloc];
        v.extend((1..=zsmalloc::ZS_MAX_PAGES_PER_ZSPAGE).map(|chain| PoolKind::Zsmalloc { chain }));
        v
    }

    /// As a table row names it: `zsmalloc chain 4 (default)`.
    pub fn label(self) -> String {
        match self {
            PoolKind::Zbud => "zbud".into(),
            PoolKind::Xvmalloc => "xvmalloc".into(),
            PoolKind::Xcfmalloc => "xcfmalloc".into(),
            PoolKind::Zsmalloc { chain } if chain == zsmalloc::Config::DEFAULT.max_pages_per_zspage => {
                format!("zsmalloc chain {chain} (default)")
            }
            PoolKind::Zsmalloc { chain } => format!("zsmalloc chain {chain}"),
        }
    }

    /// As JSON, the chart and the kernel's report name it: `zsmalloc-4`.
    pub fn key(self) -> String {
        match self {
            PoolKind::Zsmalloc { chain } => format!("zsmalloc-{chain}"),
            other => other.label(),
        }
    }

    /// What the metadata figure of this pool counts.
    pub fn metadata_rule(self) -> &'static str {
        match self {
            PoolKind::Zbud => "64 B header chunk per page (in pages) + 56 B side-table entry per page (side), computed",
            PoolKind::Xvmalloc => {
                "4 B header per block, used and free (in pages) + free-list table, nodes, handle slots (side)"
            }
            PoolKind::Xcfmalloc => {
                "16 B header per used block (in pages) + 24 B descriptor per block, used and free (side)"
            }
            PoolKind::Zsmalloc { .. } => {
                "8 B in-object header per non-huge object (in pages) + class, zspage and handle tables, lists, copy buffer (side)"
            }
        }
    }

    /// Run `w` through a fresh pool of this kind over `mem`, every phase of a [`Trial`] in order, untimed.
    pub fn measure<M: PageMemory + FrameSource>(self, w: &Workload, mem: M) -> Result<Measured, String> {
        let mut t = Trial::new(self, mem, w)?;
        t.fill()?;
        t.verify()?;
        t.free_all()?;
        t.finish()
    }
}

/// One pool of any kind over `M`: the pools are distinct types, a trial holds whichever its kind names.
/// Boxed: the pools' inline tables differ in size (zbud's unbuddied lists are the largest), and the
/// counts do not depend on where the pool struct itself lives.
enum AnyPool<M> {
    Zbud(Box<Zbud<M>>),
    Xvmalloc(Box<Xvmalloc<M>>),
    Xcfmalloc(Box<Xcfmalloc<M>>),
    Zsmalloc(Box<Zsmalloc<M>>),
}

/// The same expression on whichever pool `$pool` holds.
macro_rules! each {
    ($pool:expr, $p:ident => $e:expr) => {
        match $pool {
            AnyPool::Zbud($p) => $e,
            AnyPool::Xvmalloc($p) => $e,
            AnyPool::Xcfmalloc($p) => $e,
            AnyPool::Zsmalloc($p) => $e,
        }
    };
}

impl<M: PageMemory + FrameSource> AnyPool<M> {
    fn new(kind: PoolKind, mem: M) -> Result<Self, String> {
        Ok(match kind {
            PoolKind::Zbud => AnyPool::Zbud(Box::new(Zbud::new(mem))),
            PoolKind::Xvmalloc => AnyPool::Xvmalloc(Box::new(Xvmalloc::new(mem))),
            PoolKind::Xcfmalloc => AnyPool::Xcfmalloc(Box::new(Xcfmalloc::new(mem))),
            PoolKind::Zsmalloc { chain } => {
                let config = zsmalloc::Config { max_pages_per_zspage: chain, ..zsmalloc::Config::DEFAULT };
                let pool = Zsmalloc::with_config(mem, config).map_err(|e| format!("zsmalloc chain {chain}: {e}"))?;
                AnyPool::Zsmalloc(Box::new(pool))
            }
        })
    }

    /// (bytes in the pool's pages, bytes beside them on the heap), now.
    fn metadata(&self) -> (u64, u64) {
        match self {
            AnyPool::Zbud(p) => {
                let pages = p.total_pages();
                (pages * (zbud::HEADER_CHUNKS * zbud::CHUNK_SIZE) as u64, pages * ZBUD_SIDE_ENTRY)
            }
            AnyPool::Xvmalloc(p) => {
                let s = p.xv_stats();
                (s.header_bytes, s.side_table_bytes)
            }
            AnyPool::Xcfmalloc(p) => {
                let s = p.xcf_stats();
                (s.header_bytes, s.descriptor_bytes)
            }
            AnyPool::Zsmalloc(p) => {
                let s = p.zs_stats();
                (s.header_bytes, s.metadata_bytes)
            }
        }
    }

    /// Empty pages the pool keeps by design (counted in `total_pages`): xcfmalloc's reserve.
    fn reserve(&self) -> u64 {
        match self {
            AnyPool::Xcfmalloc(p) => p.xcf_stats().reserve_pages,
            _ => 0,
        }
    }

    /// Give the reserve back.
    fn release(&mut self) -> Result<(), PoolError> {
        match self {
            AnyPool::Xcfmalloc(p) => p.release_reserve().map(drop),
            _ => Ok(()),
        }
    }
}

/// The objects of one workload: `objects` in order, `repeat` times over.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short name for JSON, the chart and the kernel's report: `p75`, `perl`, `perl_x8`, `uniform`, `file`.
    pub key: String,
    /// Table label.
    pub label: String,
    /// The distinct objects.
    pub objects: Vec<Vec<u8>>,
    /// How many times over they are offered.
    pub repeat: usize,
    /// What the table's notes say about how the objects were made.
    pub notes: Vec<String>,
}

impl Workload {
    /// Objects offered: `objects × repeat`.
    pub fn len(&self) -> usize {
        self.objects.len() * self.repeat
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Object `i` of the offered sequence.
    pub fn object(&self, i: usize) -> &[u8] {
        &self.objects[i % self.objects.len()]
    }

    /// The same objects `repeat` times over.
    pub fn repeated(&self, key: &str, label: &str, repeat: usize) -> Workload {
        Workload { key: key.into(), label: label.into(), repeat: self.repeat * repeat, ..self.clone() }
    }

    /// Mean object size in bytes.
    pub fn mean_size(&self) -> f64 {
        self.objects.iter().map(Vec::len).sum::<usize>() as f64 / self.objects.len().max(1) as f64
    }
}

/// Each page compressed with LZ4 (frame included) and checked to decompress to itself. Same-filled pages
/// are not objects (zram and zswap keep them as one word): they are counted, not offered. Returns the
/// objects and the number of same-filled pages.
pub fn compress_pages(pages: &[Page]) -> Result<(Vec<Vec<u8>>, usize), String> {
    let mut comp = Compressor::new(Algorithm::Lz4).map_err(|e| format!("lz4: {e:?}"))?;
    let (mut objects, mut same) = (Vec::with_capacity(pages.len()), 0);
    let mut back: Box<Page> = Box::new([0u8; PAGE_SIZE]);
    for (i, page) in pages.iter().enumerate() {
        if compress::same_filled(page).is_some() {
            same += 1;
            continue;
        }
        let stored = comp.compress(page, compress::MAX_STORED).map_err(|e| format!("page {i}: lz4: {e:?}"))?.to_vec();
        comp.decompress(&stored, &mut back).map_err(|e| format!("page {i}: lz4 round trip: {e:?}"))?;
        if *back != *page {
            return Err(format!("page {i}: lz4 round trip gave other bytes"));
        }
        objects.push(stored);
    }
    Ok((objects, same))
}

/// Workload (a): `n` pages `ratio_page(seed, THREE_QUARTERS_FRESH)` whose LZ4 stored size lies in
/// [`BAND_75`], taking seeds 0, 1, 2, … and skipping (and counting) those outside the band. The objects
/// of `three_quarters(k)` are the first `k` of `three_quarters(n)` for every `k ≤ n`.
pub fn three_quarters(n: usize) -> Result<Workload, String> {
    let mut comp = Compressor::new(Algorithm::Lz4).map_err(|e| format!("lz4: {e:?}"))?;
    let mut objects = Vec::with_capacity(n);
    let (mut seed, mut skipped) = (0u64, 0usize);
    let mut page: Box<Page> = Box::new([0u8; PAGE_SIZE]);
    while objects.len() < n {
        ratio_page(seed, THREE_QUARTERS_FRESH, &mut page);
        let stored = comp.compress(&page, compress::MAX_STORED).map_err(|e| format!("seed {seed}: lz4: {e:?}"))?;
        if BAND_75.contains(&stored.len()) {
            objects.push(stored.to_vec());
        } else {
            skipped += 1;
        }
        seed += 1;
        if skipped > 10 * n {
            return Err(format!("ratio_page(_, {THREE_QUARTERS_FRESH}) lands in {BAND_75:?} too rarely"));
        }
    }
    let mut w =
        Workload { key: "p75".into(), label: format!("(a) {n} pages at 75 %"), objects, repeat: 1, notes: Vec::new() };
    w.notes.push(format!(
        "{n} pages ratio_page(seed, {THREE_QUARTERS_FRESH}) compressed with LZ4 (objects = compressed pages, 5-byte \
         frame included), every one {}..={} B (75 % ± 3 % of 4096); mean {:.1} B = {:.2} %; {skipped} of the seeds \
         0..{seed} fell outside the band and were skipped",
        BAND_75.start(),
        BAND_75.end(),
        w.mean_size(),
        w.mean_size() / PAGE_SIZE as f64 * 100.0
    ));
    Ok(w)
}

/// A workload of `pages` compressed with LZ4 ([`compress_pages`]); `what` names the pages in the note and
/// in the error when every page is same-filled.
pub fn compressed(key: &str, label: &str, what: &str, pages: &[Page]) -> Result<Workload, String> {
    let (objects, same) = compress_pages(pages)?;
    if objects.is_empty() {
        return Err(format!("{what}: every one of its {} pages is same-filled: no object to store", pages.len()));
    }
    let mut w = Workload { key: key.into(), label: label.into(), objects, repeat: 1, notes: Vec::new() };
    w.notes.push(format!(
        "{what}: {} pages compressed with LZ4 (objects = compressed pages, 5-byte frame included); {same} same-filled \
         pages are not objects; {} objects, mean {:.1} B",
        pages.len(),
        w.objects.len(),
        w.mean_size()
    ));
    Ok(w)
}

/// Workload (c): `n` objects with sizes uniform in [`UNIFORM_SIZES`] (xorshift64* from `seed`), filled with
/// pseudo-random bytes from the same generator.
pub fn uniform(n: usize, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let span = UNIFORM_SIZES.end() - UNIFORM_SIZES.start() + 1;
    let objects: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut o = vec![0; UNIFORM_SIZES.start() + rng.below(span)];
            rng.fill(&mut o);
            o
        })
        .collect();
    let mut w = Workload {
        key: "uniform".into(),
        label: format!("(c) {n} sizes uniform {}-{} B", UNIFORM_SIZES.start(), UNIFORM_SIZES.end()),
        objects,
        repeat: 1,
        notes: Vec::new(),
    };
    w.notes.push(format!(
        "{n} objects, sizes uniform in {}..={} B (seed {seed:#x}), random bytes; mean {:.1} B; a size above a pool's \
         max_size is refused by it",
        UNIFORM_SIZES.start(),
        UNIFORM_SIZES.end(),
        w.mean_size()
    ));
    w
}

/// The pages of workload (b), and how the table names them.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Key of (b); its repeat is keyed `{key}_x8`. `"perl"` for the perl sample.
    pub key: &'a str,
    /// Label after `(b) `; its repeat's label adds ` x8`. `"perl sample"` for the perl sample.
    pub name: &'a str,
    /// Where the pages come from, for the notes and errors: `"the perl sample (data/perl-heap.pages.gz)"`.
    pub what: &'a str,
    pub pages: &'a [Page],
}

impl<'a> Sample<'a> {
    /// The perl sample (2048 pages of a perl process, `data/perl-heap.pages.gz`), described by `what`.
    pub const fn perl(pages: &'a [Page], what: &'a str) -> Self {
        Sample { key: "perl", name: "perl sample", what, pages }
    }
}

/// The standard workloads, in table order: (a) [`three_quarters`]`(objects)`, (b) the sample's pages
/// compressed once and [`PERL_REPEAT`] times over, (c) [`uniform`]`(objects, UNIFORM_SEED)`. Host and
/// kernel call this with the same `objects` and pages, so they offer the same objects in the same order.
pub fn standard_workloads(objects: usize, sample: Sample<'_>) -> Result<Vec<Workload>, String> {
    let mut all = Vec::with_capacity(4);
    for_each_standard(objects, sample, |w| {
        all.push(w.clone());
        Ok(())
    })?;
    Ok(all)
}

/// The workloads of [`standard_workloads`], in the same order, each built just before `f` sees it and
/// dropped after: at most one workload's objects (and (b)'s, for its two) are held at a time, what a
/// kernel heap can afford. The first `Err`, of building or of `f`, ends the walk.
pub fn for_each_standard(
    objects: usize,
    sample: Sample<'_>,
    mut f: impl FnMut(&Workload) -> Result<(), String>,
) -> Result<(), String> {
    f(&three_quarters(objects)?)?;
    let (key, name) = (sample.key, sample.name);
    let once = compressed(key, &format!("(b) {name}"), sample.what, sample.pages)?;
    f(&once)?;
    f(&once.repeated(&format!("{key}_x{PERL_REPEAT}"), &format!("(b) {name} x{PERL_REPEAT}"), PERL_REPEAT))?;
    drop(once);
    f(&uniform(objects, UNIFORM_SEED))
}

/// One pool's figures on one workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub pool: PoolKind,
    pub offered: u64,
    pub stored: u64,
    /// Bytes of the stored objects.
    pub stored_bytes: u64,
    /// Objects refused as larger than `max_size`.
    pub refused: u64,
    pub max_size: usize,
    /// Frames held with every object live, reserve included.
    pub total_pages: u64,
    /// Of those, empty pages kept by design (xcfmalloc's reserve).
    pub reserve_pages: u64,
    /// Metadata bytes inside the pool's pages.
    pub metadata_in_pages: u64,
    /// Metadata bytes beside them, on the heap.
    pub metadata_side: u64,
    /// Objects read back and found equal.
    pub verified: u64,
}

impl Measured {
    /// Pool pages without the reserve: what the ratio uses.
    pub fn pool_pages(&self) -> u64 {
        self.total_pages - self.reserve_pages
    }

    pub fn pages_per_stored(&self) -> f64 {
        self.pool_pages() as f64 / self.stored as f64
    }

    /// Pool pages with the reserve, per stored object.
    pub fn total_pages_per_stored(&self) -> f64 {
        self.total_pages as f64 / self.stored as f64
    }

    /// Ideal pages per stored object: stored bytes ÷ 4096 ÷ stored.
    pub fn ideal_per_stored(&self) -> f64 {
        self.stored_bytes as f64 / PAGE_SIZE as f64 / self.stored as f64
    }

    /// Pool pages over the ideal pages, minus one, in percent.
    pub fn overhead_pct(&self) -> f64 {
        (self.pool_pages() as f64 * PAGE_SIZE as f64 / self.stored_bytes as f64 - 1.0) * 100.0
    }

    pub fn metadata(&self) -> u64 {
        self.metadata_in_pages + self.metadata_side
    }

    /// Pool pages plus the side metadata in pages, per stored object: all the memory the pool costs (the
    /// in-page metadata is inside pool pages already), as the xcfmalloc v2 letter added its descriptors.
    pub fn memory_per_stored(&self) -> f64 {
        (self.pool_pages() as f64 + self.metadata_side as f64 / PAGE_SIZE as f64) / self.stored as f64
    }
}

/// Where a [`Trial`] is: the phase that runs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fill,
    Verify,
    FreeAll,
    Finish,
}

/// What the pool held with every object live (taken by [`Trial::verify`] before it reads).
#[derive(Debug, Clone, Copy)]
struct Census {
    total_pages: u64,
    reserve_pages: u64,
    metadata_in_pages: u64,
    metadata_side: u64,
}

/// One pool on one workload, phase by phase, so the caller can time the loops it cares about
/// (`fill` is the malloc + write loop, `free_all` the free loop) with whatever clock it has.
pub struct Trial<'w, M> {
    kind: PoolKind,
    pool: AnyPool<M>,
    w: &'w Workload,
    /// (offered index, handle) of every stored object, in allocation order.
    handles: Vec<(usize, Handle)>,
    refused: u64,
    stored_bytes: u64,
    census: Option<Census>,
    verified: u64,
    next: Phase,
}

impl<M> core::fmt::Debug for Trial<'_, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Trial")
            .field("kind", &self.kind)
            .field("workload", &self.w.key)
            .field("stored", &self.handles.len())
            .field("refused", &self.refused)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'w, M: PageMemory + FrameSource> Trial<'w, M> {
    /// A fresh pool of `kind` over `mem`, ready for `w`. `Err` when the configuration is refused.
    pub fn new(kind: PoolKind, mem: M, w: &'w Workload) -> Result<Self, String> {
        Ok(Trial {
            kind,
            pool: AnyPool::new(kind, mem)?,
            w,
            handles: Vec::with_capacity(w.len()),
            refused: 0,
            stored_bytes: 0,
            census: None,
            verified: 0,
            next: Phase::Fill,
        })
    }

    fn step(&mut self, this: Phase, then: Phase) -> Result<(), String> {
        if self.next != this {
            return Err(format!("{}: {this:?} called when {:?} is next", self.kind.label(), self.next));
        }
        self.next = then;
        Ok(())
    }

    /// `malloc` every offered object in order and write its bytes through a `WriteOnly` mapping; objects
    /// above the pool's `max_size` are counted as refused. Any other pool error is an `Err`.
    pub fn fill(&mut self) -> Result<(), String> {
        self.step(Phase::Fill, Phase::Verify)?;
        let w = self.w;
        each!(&mut self.pool, pool => {
            let name = pool.name();
            for i in 0..w.len() {
                let object = w.object(i);
                match pool.malloc(object.len()) {
                    Ok(h) => {
                        pool.map(h, MapMode::WriteOnly, |b| b.copy_from_slice(object))
                            .map_err(|e| format!("{name}: write of object {i}: {e}"))?;
                        self.handles.push((i, h));
                        self.stored_bytes += object.len() as u64;
                    }
                    Err(PoolError::TooLarge { .. }) => self.refused += 1,
                    Err(e) => return Err(format!("{name}: malloc({}) of object {i}: {e}", object.len())),
                }
            }
        });
        Ok(())
    }

    /// Take the pool's pages and metadata with every object live, then read every stored object back and
    /// compare it with what was written: a difference is an `Err`.
    pub fn verify(&mut self) -> Result<(), String> {
        self.step(Phase::Verify, Phase::FreeAll)?;
        let total_pages = each!(&self.pool, p => p.total_pages());
        let (metadata_in_pages, metadata_side) = self.pool.metadata();
        self.census =
            Some(Census { total_pages, reserve_pages: self.pool.reserve(), metadata_in_pages, metadata_side });
        let w = self.w;
        each!(&mut self.pool, pool => {
            let name = pool.name();
            for &(i, h) in &self.handles {
                let same = pool
                    .map(h, MapMode::ReadOnly, |b| b == w.object(i))
                    .map_err(|e| format!("{name}: read of {i}: {e}"))?;
                if !same {
                    return Err(format!("{name}: object {i} reads back other bytes than were written"));
                }
                self.verified += 1;
            }
        });
        Ok(())
    }

    /// `free` every stored object in allocation order.
    pub fn free_all(&mut self) -> Result<(), String> {
        self.step(Phase::FreeAll, Phase::Finish)?;
        each!(&mut self.pool, pool => {
            let name = pool.name();
            for &(i, h) in &self.handles {
                pool.free(h).map_err(|e| format!("{name}: free of object {i}: {e}"))?;
            }
        });
        Ok(())
    }

    /// Release xcfmalloc's reserve; the pool must then hold no page. The figures, or an `Err` naming what
    /// was left.
    pub fn finish(mut self) -> Result<Measured, String> {
        self.step(Phase::Finish, Phase::Finish)?;
        let name = each!(&self.pool, p => p.name());
        self.pool.release().map_err(|e| format!("{name}: releasing the reserve: {e}"))?;
        let left = each!(&self.pool, p => p.total_pages());
        if left != 0 {
            return Err(format!("{name}: {left} pages still held after every object was freed"));
        }
        let c = self.census.ok_or_else(|| format!("{name}: finished without a census"))?;
        Ok(Measured {
            pool: self.kind,
            offered: self.w.len() as u64,
            stored: self.handles.len() as u64,
            stored_bytes: self.stored_bytes,
            refused: self.refused,
            max_size: each!(&self.pool, p => p.max_size()),
            total_pages: c.total_pages,
            reserve_pages: c.reserve_pages,
            metadata_in_pages: c.metadata_in_pages,
            metadata_side: c.metadata_side,
            verified: self.verified,
        })
    }
}

#[cfg(test)]
mod tests;
