//! The allocator table: every pool on the same objects, one run — what `pool-table` (and so
//! `cargo xtask bench --pools`) measures.
//!
//! # Why
//!
//! zcache's history is a history of allocators: xvmalloc (2009, zram), xcfmalloc (2011, proposed for
//! zcache), zbud (2013, zswap) and zsmalloc (2012, zram and later zswap) were each argued for with a
//! density figure on some workload. Here they run on the *same* objects, in fresh pools over the same kind
//! of host arena, so the figures differ only by the pools' mechanisms: where an object may lie (one page,
//! two blocks anywhere, one zspage of N pages), how sizes are rounded (4, 8, 16 or 64 bytes), and what
//! each keeps beside the data (headers in the pages, tables on the heap).
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | object | one `malloc`'d byte string: a page compressed with LZ4 through [`compress::Compressor`] (its 5-byte frame included), or a size of workload (c) filled with pseudo-random bytes |
//! | offered | objects the workload asks each pool to hold |
//! | stored | objects the pool took; `offered − stored` were *refused* as larger than the pool's `max_size` |
//! | pool pages | frames the pool holds with every stored object live; for xcfmalloc without its reserve of empty pages ([`Measured::reserve_pages`]), as the 2011 patch's `xcf_get_total_size_bytes` counted |
//! | ideal | the stored bytes packed without a byte lost: `stored bytes ÷ 4096` pages |
//! | overhead | pool pages ÷ ideal pages − 1 |
//! | metadata | bookkeeping bytes: *in pages* (headers inside the pool's frames, so already in pool pages) and *side* (heap tables beside them, not in pool pages) — see [`PoolKind::metadata_rule`] |
//! | malloc ns, free ns | wall time of the whole `malloc` + `WriteOnly` map loop (resp. `free` loop) ÷ offered objects |
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
//! # Method
//!
//! For each workload and pool, in a fresh pool over a fresh [`HostMemory`] arena: `malloc` every object in
//! order and write its bytes through a [`MapMode::WriteOnly`] mapping (timed as one loop); take the pool's
//! pages and metadata with every object live; read every stored object back (`ReadOnly`) and compare it
//! with what was written; `free` every object in allocation order (timed as one loop); the pool must then
//! hold no page (xcfmalloc: none beyond its reserve, which is then released and must leave none). The
//! counts are deterministic; only the two times vary from run to run.
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
//! - A workload that cannot be built (a page file missing or malformed, a compressor error, a page that
//!   does not decompress to itself) is an `Err` naming the cause; nothing falls back to other pages.
//! - A pool error other than `TooLarge` on `malloc`, a mismatch on read-back, or pages left after every
//!   object was freed is an `Err`: the figures of a pool that lost data are not reported.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use compress::{Algorithm, Compressor};
use pagedata::{Rng, THREE_QUARTERS_FRESH, ratio_page};
use pagemem::HostMemory;
use xcfmalloc::Xcfmalloc;
use xvmalloc::Xvmalloc;
use zbud::Zbud;
use zpool::{MapMode, PoolError, ZPool};
use zsmalloc::Zsmalloc;

use crate::{PAGE_SIZE, Page};

/// Bytes of one zbud side-table entry (zbud's module header: "one 56-byte entry per slot"); zbud keeps
/// no counter of its table, so [`PoolKind::Zbud`]'s side metadata is this times its pages.
pub const ZBUD_SIDE_ENTRY: u64 = 56;

/// The 75 % band of workload (a): stored sizes within 75 % ± 3 % of a page, 2950..=3194 bytes.
pub const BAND_75: core::ops::RangeInclusive<usize> = 2950..=3194;

/// Workload (c)'s sizes: uniform in 2048..=4096 bytes, the seed's "> PAGE_SIZE / 2" sets.
pub const UNIFORM_SIZES: core::ops::RangeInclusive<usize> = 2048..=4096;

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

    /// As JSON and the chart name it: `zsmalloc-4`.
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

    /// Run `w` through a fresh pool of this kind over an arena of `frames` frames.
    pub fn measure(self, w: &Workload, frames: usize) -> Result<Measured, String> {
        let mem = HostMemory::new(frames);
        match self {
            PoolKind::Zbud => run(self, Zbud::new(mem), w),
            PoolKind::Xvmalloc => run(self, Xvmalloc::new(mem), w),
            PoolKind::Xcfmalloc => run(self, Xcfmalloc::new(mem), w),
            PoolKind::Zsmalloc { chain } => {
                let config = zsmalloc::Config { max_pages_per_zspage: chain, ..zsmalloc::Config::DEFAULT };
                run(self, Zsmalloc::with_config(mem, config).map_err(|e| format!("zsmalloc chain {chain}: {e}"))?, w)
            }
        }
    }
}

/// What a pool tells beyond [`ZPool`]: its bookkeeping and the pages it holds empty on purpose.
trait Bookkeeping: ZPool {
    /// (bytes in the pool's pages, bytes beside them on the heap), now.
    fn metadata(&self) -> (u64, u64);
    /// Empty pages the pool keeps by design (counted in `total_pages`).
    fn reserve(&self) -> u64 {
        0
    }
    /// Give the reserve back.
    fn release(&mut self) -> Result<(), PoolError> {
        Ok(())
    }
}

impl Bookkeeping for Zsmalloc<HostMemory> {
    fn metadata(&self) -> (u64, u64) {
        let s = self.zs_stats();
        (s.header_bytes, s.metadata_bytes)
    }
}

impl Bookkeeping for Zbud<HostMemory> {
    fn metadata(&self) -> (u64, u64) {
        let pages = self.total_pages();
        (pages * (zbud::HEADER_CHUNKS * zbud::CHUNK_SIZE) as u64, pages * ZBUD_SIDE_ENTRY)
    }
}

impl Bookkeeping for Xvmalloc<HostMemory> {
    fn metadata(&self) -> (u64, u64) {
        let s = self.xv_stats();
        (s.header_bytes, s.side_table_bytes)
    }
}

impl Bookkeeping for Xcfmalloc<HostMemory> {
    fn metadata(&self) -> (u64, u64) {
        let s = self.xcf_stats();
        (s.header_bytes, s.descriptor_bytes)
    }
    fn reserve(&self) -> u64 {
        self.xcf_stats().reserve_pages
    }
    fn release(&mut self) -> Result<(), PoolError> {
        self.release_reserve().map(drop)
    }
}

/// The objects of one workload: `objects` in order, `repeat` times over.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short name for JSON and the chart: `p75`, `perl`, `perl_x8`, `uniform`, `file`.
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
    let mut back = Box::new([0u8; PAGE_SIZE]);
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
/// [`BAND_75`], taking seeds 0, 1, 2, … and skipping (and counting) those outside the band.
pub fn three_quarters(n: usize) -> Result<Workload, String> {
    let mut comp = Compressor::new(Algorithm::Lz4).map_err(|e| format!("lz4: {e:?}"))?;
    let mut objects = Vec::with_capacity(n);
    let (mut seed, mut skipped) = (0u64, 0usize);
    let mut page = [0u8; PAGE_SIZE];
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

/// A workload of `pages` compressed with LZ4 ([`compress_pages`]).
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

/// The pages of a page file: raw 4096-byte pages, or the same gzip-compressed (told by its magic bytes, as
/// xtask's page files). A missing, empty, undecodable or ragged file is an `Err` naming it.
pub fn read_page_file(path: &Path) -> Result<Vec<Page>, String> {
    let what = format!("page file {}", path.display());
    let raw = std::fs::read(path).map_err(|e| format!("{what}: {e}"))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{what}: not valid gzip: {e}"))?;
        out
    } else {
        raw
    };
    if bytes.is_empty() {
        return Err(format!("{what}: it holds no page"));
    }
    if !bytes.len().is_multiple_of(PAGE_SIZE) {
        return Err(format!("{what}: {} bytes is not a whole number of {PAGE_SIZE}-byte pages", bytes.len()));
    }
    Ok(bytes.as_chunks::<PAGE_SIZE>().0.to_vec())
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
    /// Nanoseconds per offered object of the malloc + write loop, and of the free loop.
    pub malloc_ns: f64,
    pub free_ns: f64,
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

fn run<P: Bookkeeping>(kind: PoolKind, mut pool: P, w: &Workload) -> Result<Measured, String> {
    let name = pool.name();
    let n = w.len();
    let mut handles = Vec::with_capacity(n);
    let mut refused = 0u64;
    let mut stored_bytes = 0u64;
    let started = Instant::now();
    for i in 0..n {
        let object = w.object(i);
        match pool.malloc(object.len()) {
            Ok(h) => {
                pool.map(h, MapMode::WriteOnly, |b| b.copy_from_slice(object))
                    .map_err(|e| format!("{name}: write of object {i}: {e}"))?;
                handles.push((i, h));
                stored_bytes += object.len() as u64;
            }
            Err(PoolError::TooLarge { .. }) => refused += 1,
            Err(e) => return Err(format!("{name}: malloc({}) of object {i}: {e}", object.len())),
        }
    }
    let malloc_ns = started.elapsed().as_nanos() as f64 / n.max(1) as f64;
    let total_pages = pool.total_pages();
    let reserve_pages = pool.reserve();
    let (metadata_in_pages, metadata_side) = pool.metadata();
    let mut verified = 0;
    for &(i, h) in &handles {
        let same =
            pool.map(h, MapMode::ReadOnly, |b| b == w.object(i)).map_err(|e| format!("{name}: read of {i}: {e}"))?;
        if !same {
            return Err(format!("{name}: object {i} reads back other bytes than were written"));
        }
        verified += 1;
    }
    let started = Instant::now();
    for &(i, h) in &handles {
        pool.free(h).map_err(|e| format!("{name}: free of object {i}: {e}"))?;
    }
    let free_ns = started.elapsed().as_nanos() as f64 / n.max(1) as f64;
    pool.release().map_err(|e| format!("{name}: releasing the reserve: {e}"))?;
    if pool.total_pages() != 0 {
        return Err(format!("{name}: {} pages still held after every object was freed", pool.total_pages()));
    }
    Ok(Measured {
        pool: kind,
        offered: n as u64,
        stored: handles.len() as u64,
        stored_bytes,
        refused,
        max_size: pool.max_size(),
        total_pages,
        reserve_pages,
        metadata_in_pages,
        metadata_side,
        malloc_ns,
        free_ns,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sized(sizes: &[usize]) -> Workload {
        Workload {
            key: "t".into(),
            label: "t".into(),
            objects: sizes.iter().enumerate().map(|(i, &s)| vec![i as u8; s]).collect(),
            repeat: 1,
            notes: Vec::new(),
        }
    }

    #[test]
    fn zbud_takes_a_page_for_every_object_above_a_half() {
        let m = PoolKind::Zbud.measure(&sized(&[3072; 100]), 200).unwrap();
        assert_eq!((m.offered, m.stored, m.refused, m.verified), (100, 100, 0, 100));
        assert_eq!((m.total_pages, m.reserve_pages, m.stored_bytes), (100, 0, 307_200));
        assert_eq!(m.pages_per_stored(), 1.0);
        assert_eq!(m.ideal_per_stored(), 0.75);
        assert!((m.overhead_pct() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!((m.metadata_in_pages, m.metadata_side), (6400, 5600));
        assert_eq!(m.metadata(), 12_000);
        assert_eq!(m.pool, PoolKind::Zbud);
    }

    #[test]
    fn a_size_above_max_size_is_refused_and_left_out() {
        // zbud's largest object is 4032 B, xvmalloc's 4092, xcfmalloc's 4080, zsmalloc's 4096.
        let w = sized(&[4033, 100, 4093, 4081, 4096]);
        let refused = |k: PoolKind| k.measure(&w, 64).unwrap().refused;
        assert_eq!(refused(PoolKind::Zbud), 4);
        assert_eq!(refused(PoolKind::Xvmalloc), 2);
        assert_eq!(refused(PoolKind::Xcfmalloc), 3);
        assert_eq!(refused(PoolKind::Zsmalloc { chain: 4 }), 0);
        let m = PoolKind::Zbud.measure(&w, 64).unwrap();
        assert_eq!((m.stored, m.stored_bytes, m.verified, m.total_pages), (1, 100, 1, 1));
    }

    #[test]
    fn xcfmalloc_reserve_is_held_apart_from_the_ratio() {
        // 3072 B + 16 B header = 49 of a page's 64 units. a: a reserve page, 15 units left. b: those 15
        // (largest smaller block) + 34 units of a second reserve page, 30 left. c: those 30 + 19 of a third,
        // 45 left. d: those 45 + 4 of a fourth. 4 pages in use; the reserve is refilled to 32 *before* each
        // malloc, and d took a page from it: 31 held empty, 35 in all.
        let m = PoolKind::Xcfmalloc.measure(&sized(&[3072; 4]), 64).unwrap();
        assert_eq!(m.reserve_pages, u64::from(xcfmalloc::DEFAULT_RESERVE_PAGES) - 1);
        assert_eq!((m.pool_pages(), m.total_pages), (4, 35));
        assert_eq!(m.pages_per_stored(), 1.0);
        assert_eq!(m.total_pages_per_stored(), 8.75);
        // The in-page metadata: 7 used blocks (a whole, b, c, d in two) x 16 B.
        assert_eq!(m.metadata_in_pages, 7 * 16);
    }

    #[test]
    fn every_chain_zsmalloc_accepts_is_a_pool() {
        let all = PoolKind::all();
        assert_eq!(all.len(), 3 + 16);
        assert_eq!(all[3], PoolKind::Zsmalloc { chain: 1 });
        assert_eq!(all[18], PoolKind::Zsmalloc { chain: 16 });
        assert_eq!(PoolKind::Zsmalloc { chain: 4 }.label(), "zsmalloc chain 4 (default)");
        assert_eq!(PoolKind::Zsmalloc { chain: 8 }.key(), "zsmalloc-8");
        // 3072 B + an 8-B header = 3080, class 3088 (16-B steps). Chains of 1..=4 pages waste 1008, 2016,
        // 3024 and 944 B at their ends: 4 pages, 5 objects. 12 objects: 3 zspages, 12 pages.
        let m = PoolKind::Zsmalloc { chain: 4 }.measure(&sized(&[3072; 12]), 64).unwrap();
        assert_eq!((m.stored, m.total_pages, m.metadata_in_pages), (12, 12, 96));
    }

    #[test]
    fn three_quarter_pages_are_all_in_the_band() {
        let w = three_quarters(200).unwrap();
        assert_eq!(w.len(), 200);
        assert!(w.objects.iter().all(|o| BAND_75.contains(&o.len())));
        assert_eq!(three_quarters(200).unwrap().objects, w.objects);
    }

    #[test]
    fn uniform_sizes_are_in_range_and_deterministic() {
        let w = uniform(1000, 7);
        assert!(w.objects.iter().all(|o| UNIFORM_SIZES.contains(&o.len())));
        assert_eq!(uniform(1000, 7).objects, w.objects);
        assert_ne!(uniform(1000, 8).objects, w.objects);
        let x8 = w.repeated("u8", "u x8", 8);
        assert_eq!((x8.len(), x8.object(1000).len()), (8000, w.objects[0].len()));
    }

    #[test]
    fn compressed_pages_skip_same_filled_and_round_trip() {
        let mut pages = vec![[0u8; PAGE_SIZE]; 3];
        ratio_page(1, 50, &mut pages[1]);
        let w = compressed("f", "f", "test pages", &pages).unwrap();
        assert_eq!(w.objects.len(), 1);
        let mut back = [0u8; PAGE_SIZE];
        Compressor::new(Algorithm::Lz4).unwrap().decompress(&w.objects[0], &mut back).unwrap();
        assert_eq!(back, pages[1]);
        let e = compressed("f", "f", "zeroes", &pages[..1]).unwrap_err();
        assert!(e.contains("zeroes") && e.contains("same-filled"), "{e}");
    }

    #[test]
    fn page_files_raw_and_gzip_or_a_clear_error() {
        let dir = std::env::temp_dir();
        let path = |n: &str| dir.join(format!("zkernel-pooltable-{}-{n}", std::process::id()));
        let mut page = [0u8; PAGE_SIZE];
        ratio_page(3, 40, &mut page);
        let raw = path("raw.pages");
        std::fs::write(&raw, [page, page].as_flattened()).unwrap();
        let gz = path("pages.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all([page, page].as_flattened()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        assert_eq!(read_page_file(&raw).unwrap(), vec![page, page]);
        assert_eq!(read_page_file(&gz).unwrap(), vec![page, page]);

        let missing = path("missing");
        let e = read_page_file(&missing).unwrap_err();
        assert!(e.starts_with(&format!("page file {}: ", missing.display())), "{e}");
        let ragged = path("ragged");
        std::fs::write(&ragged, [1u8; 5000]).unwrap();
        assert!(read_page_file(&ragged).unwrap_err().ends_with("5000 bytes is not a whole number of 4096-byte pages"));
        let empty = path("empty");
        std::fs::write(&empty, []).unwrap();
        assert!(read_page_file(&empty).unwrap_err().ends_with("it holds no page"));
        let bad_gz = path("bad.gz");
        std::fs::write(&bad_gz, [0x1f, 0x8b, 0, 0]).unwrap();
        assert!(read_page_file(&bad_gz).unwrap_err().contains("not valid gzip"));
        for f in [raw, gz, ragged, empty, bad_gz] {
            std::fs::remove_file(f).unwrap();
        }
    }
}
