//! Page files: raw 4096-byte pages, optionally gzip-compressed, handed to the kernel as the bootloader
//! ramdisk. xtask unpacks a `.gz` once into `target/zkernel/data/` and passes the FNV-1a checksum of
//! the bytes as the kernel option `ramdisk_fnv`, so the kernel can prove the pages arrived intact.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A page file ready to be a ramdisk.
#[derive(Debug, Clone)]
pub struct PageFile {
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
pub fn prepare(src: &Path, data_dir: &Path) -> Result<PageFile, String> {
    let raw = std::fs::read(src).map_err(|e| format!("page file {}: {e}", src.display()))?;
    let (bytes, path) = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("page file {}: not valid gzip: {e}", src.display()))?;
        let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or("pages");
        let path = data_dir.join(stem.trim_end_matches(".pages").to_string() + ".pages");
        std::fs::create_dir_all(data_dir).map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
        if std::fs::read(&path).ok().as_deref() != Some(&out[..]) {
            std::fs::write(&path, &out).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        (out, path)
    } else {
        (raw, src.to_path_buf())
    };
    check(&bytes).map_err(|why| format!("page file {}: {why}", src.display()))?;
    Ok(PageFile { path, pages: bytes.len() as u64 / 4096, fnv: kopts::fnv1a64(&bytes) })
}

fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("it is empty".into());
    }
    if bytes.len() % 4096 != 0 {
        return Err(format!("{} bytes is not a whole number of 4096-byte pages", bytes.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert!(check(&[]).is_err());
        assert!(check(&[0; 4095]).unwrap_err().contains("not a whole number"));
        assert!(check(&[0; 8192]).is_ok());
    }

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
        assert_eq!((a.pages, a.fnv), (3, kopts::fnv1a64(&pages)));
        assert_eq!((b.pages, b.fnv), (a.pages, a.fnv));
        assert_eq!(std::fs::read(&b.path).unwrap(), pages);
        assert!(prepare(&dir.join("missing"), &dir).unwrap_err().contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
