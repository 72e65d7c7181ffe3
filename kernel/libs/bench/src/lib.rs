//! Host benchmarks of zkernel's algorithm crates, with criterion: `cargo xtask bench` runs them beside
//! the in-kernel benchmark kernels. The benchmarks live in `benches/`, the pool-efficiency figures in
//! `src/bin/pool-efficiency.rs`, the allocator table in `src/bin/pool-table.rs`; this library holds what
//! they need: the real page sample, and [`pooltable`] (every pool on the same objects, measured).
//!
//! # The sample
//!
//! Both read `data/perl-heap.pages.gz` from this repository ([`PERL_SAMPLE`]; `data/README.md` says
//! where it comes from): 2048 pages of a perl process, the pages `shared/anchors.md` measured Linux's
//! zram on. The figures mean something only on those exact bytes, so [`perl_pages`] checks them (page
//! count and FNV-1a 64 of the unpacked bytes, the checksum xtask hands the kernel as `ramdisk_fnv`) and
//! answers a missing or different file with an error that says which file and why. There is no
//! fallback to synthetic pages.
//!
//! | check | value |
//! |---|---|
//! | pages | [`PERL_PAGES`] = 2048 (8 MiB unpacked) |
//! | FNV-1a 64 of the unpacked pages | [`PERL_FNV`] = `0x3310_86d6_6740_0915` |

use std::io::Read;
use std::sync::OnceLock;

pub mod pooltable;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// One page of the sample.
pub type Page = [u8; PAGE_SIZE];

/// The sample, from the repository root (`kernel/libs/bench` is three levels down).
pub const PERL_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../data/perl-heap.pages.gz");

/// Pages in the sample.
pub const PERL_PAGES: usize = 2048;

/// FNV-1a 64 of the sample's 8 MiB of unpacked pages: the bytes Linux's zram was measured on.
pub const PERL_FNV: u64 = ::pooltable::PERL_SAMPLE_FNV;

/// The sample's 2048 pages, read and checked once. `Err` says which file and what is wrong with it.
pub fn perl_pages() -> Result<&'static [Page], String> {
    static PAGES: OnceLock<Result<Vec<Page>, String>> = OnceLock::new();
    PAGES.get_or_init(|| load(PERL_SAMPLE, PERL_PAGES, PERL_FNV)).as_deref().map_err(Clone::clone)
}

/// Read the gzip page file at `path` and check its page count and checksum.
fn load(path: &str, pages: usize, fnv: u64) -> Result<Vec<Page>, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!("the page sample {path}: {e} (it ships with the repository in data/; see data/README.md)")
    })?;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut raw).map_err(|e| format!("the page sample {path}: {e}"))?;
    if raw.len() != pages * PAGE_SIZE {
        return Err(format!("the page sample {path}: {} bytes unpacked, not {pages} pages", raw.len()));
    }
    let got = fnv1a::fnv1a64(&raw);
    if got != fnv {
        return Err(format!(
            "the page sample {path}: FNV-1a 64 {got:#018x}, not {fnv:#018x}: these are not the pages the figures \
             (and shared/anchors.md's Linux measurements) are about"
        ));
    }
    Ok(raw.as_chunks::<PAGE_SIZE>().0.to_vec())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A gzip file of `pages` pages of `byte` in the temporary directory, named after the test.
    fn page_file(name: &str, pages: usize, byte: u8) -> String {
        let path = std::env::temp_dir().join(format!("zkernel-bench-{}-{name}.pages.gz", std::process::id()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![byte; pages * PAGE_SIZE]).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_repository_sample_is_the_measured_one() {
        let pages = perl_pages().unwrap();
        assert_eq!(pages.len(), PERL_PAGES);
        assert_eq!(fnv1a::fnv1a64(pages.as_flattened()), PERL_FNV);
        assert!(PERL_SAMPLE.ends_with("/kernel/libs/bench/../../../data/perl-heap.pages.gz"));
    }

    #[test]
    fn a_missing_short_or_different_file_is_an_error_that_names_it() {
        let missing = std::env::temp_dir().join("zkernel-bench-no-such-file.pages.gz");
        let missing = missing.to_string_lossy();
        let e = load(&missing, 2, 0).unwrap_err();
        assert!(e.contains(&*missing) && e.contains("data/README.md"), "{e}");

        let short = page_file("short", 1, 7);
        let e = load(&short, 2, 0).unwrap_err();
        assert!(e.contains(&short) && e.contains("4096 bytes unpacked, not 2 pages"), "{e}");

        let other = page_file("other", 2, 7);
        let right = fnv1a::fnv1a64(&[7; 2 * PAGE_SIZE]);
        let e = load(&other, 2, right ^ 1).unwrap_err();
        assert!(e.contains(&other) && e.contains(&format!("{right:#018x}")), "{e}");
        let pages = load(&other, 2, right).unwrap();
        assert!(pages.len() == 2 && pages.iter().all(|p| p.iter().all(|&b| b == 7)));

        let not_gzip = page_file("not-gzip", 0, 0);
        std::fs::write(&not_gzip, b"not gzip").unwrap();
        assert!(load(&not_gzip, 2, 0).unwrap_err().contains(&not_gzip));
        for f in [short, other, not_gzip] {
            std::fs::remove_file(f).unwrap();
        }
    }
}
