//! Page files: raw 4096-byte pages, optionally gzip-compressed; bytes in, checked pages or a typed error.
//!
//! # Why
//!
//! `cargo xtask run --pages FILE` (and `test`, `bench`, `runchecks`) hands a page file to the kernel as
//! the bootloader ramdisk, with the FNV-1a checksum of its pages as the kernel option `ramdisk_fnv`.
//! The file comes from the user, so every byte of it is input nobody checked. This crate is the pure part
//! of reading it — decide raw or gzip, unpack, check the size, checksum — with no file system and no
//! process, so that host tests and the fuzz target `page_file` (fuzz/fuzz_targets/page_file.rs) call
//! the very code xtask runs. xtask (`xtask/src/pages.rs`) keeps the file handling: reading the file,
//! writing the unpacked copy of a `.gz`, and naming the file in its errors. A host-side crate (std,
//! `flate2`), unlike the `no_std` crates beside it: the kernel only ever sees the unpacked pages.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | page | [`PAGE_SIZE`] = 4096 bytes |
//! | raw | a file that does not start with the gzip magic `1f 8b`: the pages themselves |
//! | gzip | a file that starts with `1f 8b`: one or more gzip members whose unpacked bytes, concatenated, are the pages (as `gzip -d` reads it) |
//! | member | one gzip stream: header, deflate data, CRC-32 and length trailer (RFC 1952) |
//!
//! # Layout
//!
//! ```text
//!   raw:   [ page 0 ][ page 1 ] ... [ page n-1 ]              n ≥ 1, length = 4096 n exactly
//!   gzip:  [ member 0 ][ member 1 ] …                        nothing after the last member
//!            └─ unpacked, concatenated ─→ the raw layout above
//! ```
//!
//! # Worked example
//!
//! 8192 zero bytes read as [`Encoding::Raw`], 2 pages, `fnv = fnv1a64(&[0; 8192])`; the same bytes
//! gzipped read as [`Encoding::Gzip`] with the same pages and checksum. 5000 bytes are refused with
//! [`PageFileError::NotWholePages`] `{ len: 5000 }`, printed as `5000 bytes is not a whole number of
//! 4096-byte pages` (xtask puts `page file PATH: ` in front).
//!
//! # Contracts
//!
//! - [`read`] never panics, for any bytes; an error says which rule the file broke.
//! - `Ok` pages are at least one page, a whole number of pages, and `fnv` is `fnv1a64` of exactly them.
//! - A raw file's pages are its bytes, borrowed; a gzip file's are what `gzip -d` would write: every
//!   member (`cat a.gz b.gz`, bgzip and pigz files have several). Bytes after the last member (padding,
//!   a raw file appended) are an error, not ignored. (Until the fuzz target `page_file` found it, only
//!   the first member was read and the rest silently dropped: fewer pages, and a `ramdisk_fnv` that
//!   agreed with them.)
//! - The size of an unpacked gzip file is not bounded here: a page file is the user's own.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

/// Bytes per page.
pub const PAGE_SIZE: usize = 4096;

/// The first two bytes of every gzip member (RFC 1952, ID1 ID2).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How the file was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The pages themselves.
    Raw,
    /// gzip of the pages, in one or more members.
    Gzip,
}

/// A page file that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pages<'a> {
    pub encoding: Encoding,
    /// The pages: borrowed from the input when raw, unpacked when gzip.
    pub bytes: Cow<'a, [u8]>,
    /// `bytes.len() / 4096`, at least 1.
    pub pages: u64,
    /// FNV-1a 64 of `bytes`: the kernel option `ramdisk_fnv`.
    pub fnv: u64,
}

/// Why a page file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageFileError {
    /// No pages (an empty file, or gzip of nothing).
    Empty,
    /// The (unpacked) length is not a multiple of [`PAGE_SIZE`].
    NotWholePages { len: u64 },
    /// The file starts with the gzip magic but is not a valid gzip file; `why` is the decoder's reason
    /// (`unexpected end of file`, `invalid gzip header`, a checksum mismatch, …).
    BadGzip { why: String },
}

impl fmt::Display for PageFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageFileError::Empty => write!(f, "it is empty"),
            PageFileError::NotWholePages { len } => {
                write!(f, "{len} bytes is not a whole number of {PAGE_SIZE}-byte pages")
            }
            PageFileError::BadGzip { why } => write!(f, "not valid gzip: {why}"),
        }
    }
}

impl std::error::Error for PageFileError {}

/// The encoding a file of these bytes is read with: gzip exactly when it starts with [`GZIP_MAGIC`].
pub fn encoding(file: &[u8]) -> Encoding {
    if file.starts_with(&GZIP_MAGIC) { Encoding::Gzip } else { Encoding::Raw }
}

/// Read a page file's bytes: unpack if gzip, then check the size (module header).
pub fn read(file: &[u8]) -> Result<Pages<'_>, PageFileError> {
    let encoding = encoding(file);
    let bytes: Cow<'_, [u8]> = match encoding {
        Encoding::Raw => Cow::Borrowed(file),
        Encoding::Gzip => Cow::Owned(gunzip(file)?),
    };
    check(&bytes)?;
    let pages = (bytes.len() / PAGE_SIZE) as u64;
    let fnv = fnv1a::fnv1a64(&bytes);
    Ok(Pages { encoding, bytes, pages, fnv })
}

/// Every member of a gzip file, unpacked and concatenated; anything after the last member is an error.
fn gunzip(file: &[u8]) -> Result<Vec<u8>, PageFileError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(|e| PageFileError::BadGzip { why: e.to_string() })?;
    Ok(out)
}

/// The size rule: at least one page, whole pages only.
pub fn check(bytes: &[u8]) -> Result<(), PageFileError> {
    if bytes.is_empty() {
        return Err(PageFileError::Empty);
    }
    if !bytes.len().is_multiple_of(PAGE_SIZE) {
        return Err(PageFileError::NotWholePages { len: bytes.len() as u64 });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
