//! Page files: raw 4096-byte pages, optionally gzip-compressed, handed to the kernel as the bootloader
//! ramdisk. xtask unpacks a `.gz` once into `target/zkernel/data/` and passes the FNV-1a checksum of
//! the bytes as the kernel option `ramdisk_fnv`, so the kernel can prove the pages arrived intact. The
//! checksum is the workspace's `fnv1a` crate (kernel/libs/fnv), the one copy the kernel checks with too.
//!
//! What a page file may contain (raw or gzip, whole pages, at least one) is the `pagefile` crate
//! (kernel/libs/pagefile): bytes in, pages or a typed error, no file system, so the fuzz target
//! `page_file` runs the same rules. This module reads the file, keeps the unpacked copy and names the
//! file in every error: `page file /tmp/bad.pages: 5000 bytes is not a whole number of 4096-byte pages`
//! (the context, then the cause, as `main` prints an error chain).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pagefile::Encoding;

/// The page file `cargo xtask run` uses when `--pages` is not given: the repository's real sample.
pub const DEFAULT_PAGES: &str = "data/perl-heap.pages.gz";

/// A page file ready to be a ramdisk.
#[derive(Debug, Clone)]
pub struct PageFile {
    /// The file the user named (or the default).
    pub source: PathBuf,
    /// The raw pages the ramdisk is made of (the unpacked copy of a `.gz`).
    pub path: PathBuf,
    pub pages: u64,
    pub fnv: u64,
}

impl PageFile {
    /// The kernel option that carries the checksum.
    pub fn option(&self) -> String {
        format!("ramdisk_fnv={:016x}", self.fnv)
    }
}

/// Check and (if gzip) unpack `src` into `data_dir`; errors name the file and what is wrong with it.
pub fn prepare(src: &Path, data_dir: &Path) -> Result<PageFile> {
    let what = || format!("page file {}", src.display());
    let raw = std::fs::read(src).with_context(what)?;
    let read = pagefile::read(&raw).with_context(what)?;
    let path = match read.encoding {
        Encoding::Raw => src.to_path_buf(),
        Encoding::Gzip => {
            let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("pages");
            // Named by content: two different page files never share an unpacked copy.
            let path = data_dir.join(format!("{}-{:016x}.pages", stem.trim_end_matches(".pages"), read.fnv));
            std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
            if std::fs::read(&path).ok().as_deref() != Some(&read.bytes[..]) {
                std::fs::write(&path, &read.bytes).with_context(|| format!("writing {}", path.display()))?;
            }
            path
        }
    };
    Ok(PageFile { source: src.to_path_buf(), path, pages: read.pages, fnv: read.fnv })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_raw_files_give_the_same_pages() {
        let dir = std::env::temp_dir().join(format!("zkernel-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pages: Vec<u8> = (0..3 * 4096).map(|i| (i * 7 % 251) as u8).collect();
        let raw = dir.join("t.pages");
        std::fs::write(&raw, &pages).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &pages).unwrap();
        let gz_path = dir.join("t2.pages.gz");
        std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
        let a = prepare(&raw, &dir.join("out")).unwrap();
        let b = prepare(&gz_path, &dir.join("out")).unwrap();
        assert_eq!((a.pages, a.fnv), (3, fnv1a::fnv1a64(&pages)));
        assert_eq!((b.pages, b.fnv), (a.pages, a.fnv));
        assert_eq!(std::fs::read(&b.path).unwrap(), pages);
        let missing = dir.join("missing");
        let err = format!("{:#}", prepare(&missing, &dir).unwrap_err());
        assert!(err.starts_with(&format!("page file {}: ", missing.display())), "{err}");
        // The message shape `cargo xtask run --pages` prints: what, then why, on one line.
        let bad = dir.join("bad.pages");
        std::fs::write(&bad, vec![0u8; 5000]).unwrap();
        let err = format!("{:#}", prepare(&bad, &dir).unwrap_err());
        assert_eq!(err, format!("page file {}: 5000 bytes is not a whole number of 4096-byte pages", bad.display()));
        let not_gz = dir.join("not.pages.gz");
        std::fs::write(&not_gz, [0x1f, 0x8b, 0, 0]).unwrap();
        let err = format!("{:#}", prepare(&not_gz, &dir).unwrap_err());
        assert!(err.starts_with(&format!("page file {}: not valid gzip: ", not_gz.display())), "{err}");
        // A gzip file whose pages are refused leaves no unpacked copy behind.
        let short_gz = dir.join("short.pages.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &[1; 5000]).unwrap();
        std::fs::write(&short_gz, gz.finish().unwrap()).unwrap();
        let fresh = dir.join("fresh");
        let err = format!("{:#}", prepare(&short_gz, &fresh).unwrap_err());
        assert_eq!(
            err,
            format!("page file {}: 5000 bytes is not a whole number of 4096-byte pages", short_gz.display())
        );
        assert!(!fresh.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
