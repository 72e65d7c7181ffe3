//! The allocator table on the host: what `pool-table` (and so `cargo xtask bench --pools`) measures.
//!
//! # Why
//!
//! The counting itself — the workloads' objects, one pool on one workload, the figures — is the `no_std`
//! crate [`pooltable`] (its header defines every column), so the kernel's `--workload pools` runs the very
//! same code over real frames and its pool-page counts agree with these exactly. This module adds only
//! what needs `std`: a [`HostMemory`] arena per trial, the wall clock around the two timed loops, and
//! reading a page file from disk.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | [`Timed`] | one pool's [`Measured`] figures plus the two times |
//! | malloc ns, free ns | wall time of [`pooltable::Trial::fill`] (the `malloc` + `WriteOnly` write loop), resp. [`pooltable::Trial::free_all`] (the `free` loop), ÷ offered objects |
//!
//! # Layout of a timed trial
//!
//! | step | call | timed |
//! |---|---|---|
//! | 1 | `Trial::new(kind, HostMemory::new(frames), w)` | no |
//! | 2 | `fill` | malloc ns |
//! | 3 | `verify` (census, then read-back) | no |
//! | 4 | `free_all` | free ns |
//! | 5 | `finish` (release the reserve, nothing left) | no |
//!
//! # Worked example
//!
//! `measure(PoolKind::Zbud, &w, 200)` with 100 objects of 3072 B gives `Timed { m, .. }` with
//! `m.total_pages == 100` (test `timed_figures_are_the_untimed_ones`), whatever the two times are.
//!
//! # Contracts
//!
//! - The counts of [`measure`] are those of `PoolKind::measure` on the same workload: only the times vary.
//! - A page file that is missing, empty, undecodable or ragged is an `Err` naming it ([`read_page_file`]).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use pagemem::HostMemory;
pub use pooltable::{
    BAND_75, Measured, OBJECTS, PERL_REPEAT, PoolKind, Sample, Trial, UNIFORM_SEED, UNIFORM_SIZES, Workload,
    ZBUD_SIDE_ENTRY, compress_pages, compressed, for_each_standard, standard_workloads, three_quarters, uniform,
};

use crate::{PAGE_SIZE, Page};

/// One pool's figures on one workload, with the wall time of its two loops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    /// The deterministic figures.
    pub m: Measured,
    /// Nanoseconds per offered object of the malloc + write loop, and of the free loop.
    pub malloc_ns: f64,
    pub free_ns: f64,
}

/// Run `w` through a fresh pool of `kind` over an arena of `frames` frames, timing `fill` and `free_all`.
pub fn measure(kind: PoolKind, w: &Workload, frames: usize) -> Result<Timed, String> {
    let per = |t: Instant| t.elapsed().as_nanos() as f64 / w.len().max(1) as f64;
    let mut trial = Trial::new(kind, HostMemory::new(frames), w)?;
    let started = Instant::now();
    trial.fill()?;
    let malloc_ns = per(started);
    trial.verify()?;
    let started = Instant::now();
    trial.free_all()?;
    let free_ns = per(started);
    Ok(Timed { m: trial.finish()?, malloc_ns, free_ns })
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use pagedata::ratio_page;

    use super::*;

    #[test]
    fn timed_figures_are_the_untimed_ones() {
        let w = Workload {
            key: "t".into(),
            label: "t".into(),
            objects: vec![vec![7u8; 3072]; 100],
            repeat: 1,
            notes: Vec::new(),
        };
        for kind in [PoolKind::Zbud, PoolKind::Xcfmalloc, PoolKind::Zsmalloc { chain: 4 }] {
            let t = measure(kind, &w, 200).unwrap();
            assert_eq!(t.m, kind.measure(&w, HostMemory::new(200)).unwrap());
            assert!(t.malloc_ns > 0.0 && t.free_ns > 0.0);
        }
        assert_eq!(measure(PoolKind::Zbud, &w, 200).unwrap().m.total_pages, 100);
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
