//! The file disk's image format: a read-only set of files, packed by xtask, mounted by the kernel.
//!
//! # Why
//!
//! cleancache (design.md) needs *clean file pages*: pages the kernel can drop and read again from a
//! disk. zkernel has no file system, and does not need one to teach the point: a read-only disk with a
//! table of files is enough. This crate is that format, in one place for both sides. xtask packs a
//! directory into an image ([`pack`]) and attaches it as the virtio-blk disk with serial `files`; the
//! kernel (`kernel/src/fs.rs`) reads page 0 and the table and refuses anything this crate does not
//! validate ([`Image::parse_header`], [`Image::parse_table`]). `no_std` with `alloc`, no `unsafe`: the
//! host tests pack images and corrupt them one way at a time.
//!
//! # Vocabulary
//!
//! * *page*: 4096 bytes, the unit of the disk ([`PAGE_SIZE`]); "page `p`" is bytes `4096 p .. 4096 (p+1)`
//!   of the image.
//! * *file table*: one fixed-size [entry](FileEntry) per file, in pages right after the header.
//! * *inode*: a file's index in the table (the kernel's name for it, as cleancache keys pages by inode).
//!
//! # Layout
//!
//! ```text
//!  page 0        pages 1 .. 1+T           data_start ..                                  total_pages
//! [ header ][ file table: T pages ][ file 0 | pad ][ file 1 | pad ] ... [ file n-1 | pad ]
//! ```
//!
//! Every file starts on its own page; its last page is zero-padded. All integers are little-endian.
//!
//! **Header** (page 0; bytes 72..4096 are zero):
//!
//! | offset | size | field | rule |
//! |---|---|---|---|
//! | 0 | 8 | magic | `ZKFILES1` ([`MAGIC`]) |
//! | 8 | 4 | version | 1 ([`VERSION`]) |
//! | 12 | 4 | entry size | 128 ([`ENTRY_SIZE`]) |
//! | 16 | 4 | file count `n` | at most [`MAX_FILES`] |
//! | 20 | 4 | reserved | 0 |
//! | 24 | 8 | table start page | 1 ([`TABLE_START`]) |
//! | 32 | 8 | table pages `T` | `ceil(n × 128 / 4096)` |
//! | 40 | 8 | data start page | `1 + T` |
//! | 48 | 8 | total pages | ≥ data start, ≤ the disk's pages |
//! | 56 | 8 | table checksum | FNV-1a 64 of the `T` table pages, padding included |
//! | 64 | 8 | header checksum | FNV-1a 64 of bytes 0..64 |
//!
//! **File table entry** (128 bytes, 32 per page, entry `i` at byte `4096 + 128 i`; unused bytes of the
//! last table page are zero):
//!
//! | offset | size | field | rule |
//! |---|---|---|---|
//! | 0 | 104 | name | UTF-8 relative path (`docs/swap.md`), NUL-padded; non-empty, unique ([`NAME_LEN`]) |
//! | 104 | 8 | start page | ≥ data start |
//! | 112 | 8 | length in bytes | the file occupies `ceil(length / 4096)` pages, ending ≤ total pages |
//! | 120 | 8 | checksum | FNV-1a 64 of the file's `length` bytes |
//!
//! No two files share a page. An empty file has no pages; its start page is where it would begin.
//!
//! # Worked example
//!
//! `README.md` (11359 bytes), `docs/swap.md` (8192 bytes) and an empty `empty`: `n = 3`, the table takes
//! `ceil(384 / 4096) = 1` page, so data starts at page 2. `README.md` takes `ceil(11359 / 4096) = 3`
//! pages, 2..5 (its last page holds 3167 bytes and 929 zeros), `docs/swap.md` takes pages 5..7, `empty`
//! starts at 7 with no pages, and the image is 7 pages (28 KiB).
//!
//! # Contracts
//!
//! * [`pack`] lays files out in the order given; [`Image::parse_table`] accepts any order without
//!   overlaps.
//! * The parsers never panic on any input and never trust a field before checking it: every error is an
//!   [`ImageError`] naming the field or file at fault. File *contents* are not read at mount; a file's
//!   checksum is for whoever reads it whole (the kernel's `verify`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use fnv1a::fnv1a64;

/// Bytes in a page of the image.
pub const PAGE_SIZE: usize = 4096;
/// The first 8 bytes of every image.
pub const MAGIC: [u8; 8] = *b"ZKFILES1";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of one file-table entry.
pub const ENTRY_SIZE: usize = 128;
/// Entries in one table page.
pub const ENTRIES_PER_PAGE: usize = PAGE_SIZE / ENTRY_SIZE;
/// Longest name, in bytes.
pub const NAME_LEN: usize = 104;
/// The page the file table starts at.
pub const TABLE_START: u64 = 1;
/// Most files in an image (a table of 2048 pages, 8 MiB).
pub const MAX_FILES: u32 = 1 << 16;

/// Byte offsets of the header fields in page 0.
pub mod header_offset {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const ENTRY_SIZE: usize = 12;
    pub const FILE_COUNT: usize = 16;
    pub const TABLE_START: usize = 24;
    pub const TABLE_PAGES: usize = 32;
    pub const DATA_START: usize = 40;
    pub const TOTAL_PAGES: usize = 48;
    pub const TABLE_FNV: usize = 56;
    pub const HEADER_FNV: usize = 64;
    /// Bytes the header checksum covers (0..64).
    pub const CHECKED_LEN: usize = 64;
}

/// Byte offsets of the fields in a file-table entry.
pub mod entry_offset {
    pub const NAME: usize = 0;
    pub const START_PAGE: usize = 104;
    pub const LENGTH: usize = 112;
    pub const FNV: usize = 120;
}

/// Pages needed for `bytes` bytes.
pub const fn pages_for(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE as u64)
}

/// Table pages for `count` files.
pub const fn table_pages_for(count: u32) -> u64 {
    pages_for(count as u64 * ENTRY_SIZE as u64)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A file name as stored: up to [`NAME_LEN`] bytes of UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FileName {
    bytes: [u8; NAME_LEN],
    len: u8,
}

impl FileName {
    /// The name; `""` only for a name that failed validation (never in a parsed table).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The bytes of `field` up to its first NUL (at most [`NAME_LEN`]), valid UTF-8 or not: a name
    /// that is not is shown lossily in errors.
    fn from_field(field: &[u8]) -> Self {
        let len = field.iter().position(|&b| b == 0).unwrap_or(field.len()).min(NAME_LEN);
        let mut bytes = [0; NAME_LEN];
        bytes[..len].copy_from_slice(&field[..len]);
        FileName { bytes, len: len as u8 }
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", ErrorName::of(self))
    }
}

/// Bytes of a name an [`ImageError`] keeps (its end: the end of a path says most).
pub const ERROR_NAME_LEN: usize = 40;

/// A file's name as an [`ImageError`] carries it: the last [`ERROR_NAME_LEN`] bytes, shown after `…`
/// when cut. Small and `Copy`, so errors stay small.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorName {
    bytes: [u8; ERROR_NAME_LEN],
    len: u8,
    cut: bool,
}

impl ErrorName {
    fn of(name: &FileName) -> Self {
        let full = &name.bytes[..usize::from(name.len)];
        let mut from = full.len().saturating_sub(ERROR_NAME_LEN);
        // Cut a valid name at a character boundary (a continuation byte is 0b10xx_xxxx).
        if core::str::from_utf8(full).is_ok() {
            while from < full.len() && full[from] & 0xc0 == 0x80 {
                from += 1;
            }
        }
        let tail = &full[from..];
        let mut bytes = [0; ERROR_NAME_LEN];
        bytes[..tail.len()].copy_from_slice(tail);
        ErrorName { bytes, len: tail.len() as u8, cut: from > 0 }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cut {
            f.write_str("…")?;
        }
        for chunk in self.bytes[..usize::from(self.len)].utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The header of page 0, as validated by [`Image::parse_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub file_count: u32,
    pub table_start: u64,
    pub table_pages: u64,
    pub data_start: u64,
    pub total_pages: u64,
    pub table_fnv: u64,
}

impl Header {
    /// The header of an image with `file_count` files whose data ends at `total_pages`.
    pub fn new(file_count: u32, total_pages: u64, table_fnv: u64) -> Self {
        let table_pages = table_pages_for(file_count);
        Header {
            file_count,
            table_start: TABLE_START,
            table_pages,
            data_start: TABLE_START + table_pages,
            total_pages,
            table_fnv,
        }
    }

    /// Page 0 for this header, magic, version and header checksum included. Writes the fields as they
    /// are, valid or not (tests use it to make images wrong in one way).
    pub fn encode(&self) -> [u8; PAGE_SIZE] {
        use header_offset as o;
        let mut p = [0u8; PAGE_SIZE];
        p[o::MAGIC..o::MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(&mut p, o::VERSION, VERSION);
        put_u32(&mut p, o::ENTRY_SIZE, ENTRY_SIZE as u32);
        put_u32(&mut p, o::FILE_COUNT, self.file_count);
        put_u64(&mut p, o::TABLE_START, self.table_start);
        put_u64(&mut p, o::TABLE_PAGES, self.table_pages);
        put_u64(&mut p, o::DATA_START, self.data_start);
        put_u64(&mut p, o::TOTAL_PAGES, self.total_pages);
        put_u64(&mut p, o::TABLE_FNV, self.table_fnv);
        let fnv = fnv1a64(&p[..o::CHECKED_LEN]);
        put_u64(&mut p, o::HEADER_FNV, fnv);
        p
    }

    /// Bytes of the file table, padding included.
    pub fn table_bytes(&self) -> u64 {
        self.table_pages * PAGE_SIZE as u64
    }
}

/// One file of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    name: FileName,
    /// First page of the file's data on the disk.
    pub start_page: u64,
    /// Length in bytes.
    pub len: u64,
    /// FNV-1a 64 of the file's bytes.
    pub fnv: u64,
}

impl FileEntry {
    /// The relative path, e.g. `docs/swap.md`.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Pages the file occupies: `ceil(len / 4096)`.
    pub fn pages(&self) -> u64 {
        pages_for(self.len)
    }

    /// The disk pages `start_page .. start_page + pages()` (validated not to overflow).
    pub fn page_range(&self) -> core::ops::Range<u64> {
        self.start_page..self.start_page + self.pages()
    }

    /// Bytes of the file in its page `index` (4096 except in the last page); 0 past the end.
    pub fn bytes_in_page(&self, index: u64) -> usize {
        let start = index.saturating_mul(PAGE_SIZE as u64);
        self.len.saturating_sub(start).min(PAGE_SIZE as u64) as usize
    }

    /// The 128 bytes of this entry.
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        use entry_offset as o;
        let mut e = [0u8; ENTRY_SIZE];
        e[o::NAME..o::NAME + NAME_LEN].copy_from_slice(&self.name.bytes);
        put_u64(&mut e, o::START_PAGE, self.start_page);
        put_u64(&mut e, o::LENGTH, self.len);
        put_u64(&mut e, o::FNV, self.fnv);
        e
    }
}

/// Why an image was refused. Messages name the field or file at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The disk is smaller than the header page.
    NoHeader {
        disk_pages: u64,
    },
    BadMagic {
        found: [u8; 8],
    },
    BadVersion {
        found: u32,
    },
    HeaderChecksum {
        stored: u64,
        computed: u64,
    },
    BadEntrySize {
        found: u32,
    },
    TooManyFiles {
        count: u32,
        max: u32,
    },
    /// A header field disagrees with the layout (table at page 1, `T` pages, data right after it).
    BadLayout {
        field: &'static str,
        found: u64,
        expected: u64,
    },
    /// The header's total pages exceed the disk.
    ImageBeyondDisk {
        total_pages: u64,
        disk_pages: u64,
    },
    /// Fewer table bytes than the header's table pages.
    TruncatedTable {
        have: u64,
        need: u64,
    },
    TableChecksum {
        stored: u64,
        computed: u64,
    },
    EmptyName {
        index: u32,
    },
    /// Not UTF-8, or bytes other than NUL after the name's NUL.
    BadName {
        index: u32,
        name: ErrorName,
        why: &'static str,
    },
    DuplicateName {
        index: u32,
        first: u32,
        name: ErrorName,
    },
    /// The file's pages `start..end` reach past the disk (`end` is `u64::MAX` when it overflowed).
    FileBeyondDisk {
        index: u32,
        name: ErrorName,
        start: u64,
        end: u64,
        disk_pages: u64,
    },
    /// The file's pages lie outside the data area `data_start..total_pages`.
    FileOutsideData {
        index: u32,
        name: ErrorName,
        start: u64,
        end: u64,
        data_start: u64,
        total_pages: u64,
    },
    /// Two files share page `page`.
    Overlap {
        first: u32,
        first_name: ErrorName,
        second: u32,
        second_name: ErrorName,
        page: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImageError::*;
        match *self {
            NoHeader { disk_pages } => write!(f, "the disk has {disk_pages} pages, not even a header page"),
            BadMagic { found } => {
                write!(
                    f,
                    "bad magic \"{}\" (want \"{}\"): not a file image",
                    found.escape_ascii(),
                    MAGIC.escape_ascii()
                )
            }
            BadVersion { found } => write!(f, "format version {found}, this kernel reads version {VERSION}"),
            HeaderChecksum { stored, computed } => {
                write!(f, "header checksum {stored:#018x} stored, {computed:#018x} computed")
            }
            BadEntrySize { found } => write!(f, "table entries of {found} bytes, want {ENTRY_SIZE}"),
            TooManyFiles { count, max } => write!(f, "{count} files, at most {max}"),
            BadLayout { field, found, expected } => write!(f, "header: {field} is {found}, expected {expected}"),
            ImageBeyondDisk { total_pages, disk_pages } => {
                write!(f, "the image claims {total_pages} pages, the disk has {disk_pages}")
            }
            TruncatedTable { have, need } => write!(f, "file table truncated: {have} bytes, the header says {need}"),
            TableChecksum { stored, computed } => {
                write!(f, "file table checksum {stored:#018x} stored, {computed:#018x} computed")
            }
            EmptyName { index } => write!(f, "file {index}: empty name"),
            BadName { index, name, why } => write!(f, "file {index} ({name}): bad name: {why}"),
            DuplicateName { index, first, name } => write!(f, "file {index} ({name}): same name as file {first}"),
            FileBeyondDisk { index, name, start, end, disk_pages } => {
                write!(f, "file {index} ({name}): pages {start}..{end} beyond the disk's {disk_pages} pages")
            }
            FileOutsideData { index, name, start, end, data_start, total_pages } => write!(
                f,
                "file {index} ({name}): pages {start}..{end} outside the data area {data_start}..{total_pages}"
            ),
            Overlap { first, first_name, second, second_name, page } => {
                write!(f, "files {first} ({first_name}) and {second} ({second_name}) share page {page}")
            }
        }
    }
}

/// Why [`pack`] refused a set of files. `index` is the file's position in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackError {
    TooManyFiles { count: usize, max: u32 },
    EmptyName { index: usize },
    NameTooLong { index: usize, len: usize },
    NameHasNul { index: usize },
    DuplicateName { index: usize, first: usize },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PackError::TooManyFiles { count, max } => write!(f, "{count} files, at most {max} fit in an image"),
            PackError::EmptyName { index } => write!(f, "file {index}: empty name"),
            PackError::NameTooLong { index, len } => {
                write!(f, "file {index}: name of {len} bytes, at most {NAME_LEN}")
            }
            PackError::NameHasNul { index } => write!(f, "file {index}: name contains a NUL byte"),
            PackError::DuplicateName { index, first } => write!(f, "file {index}: same name as file {first}"),
        }
    }
}

/// Pack `files` (name, contents), in the order given, into an image.
pub fn pack<N: AsRef<str>, D: AsRef<[u8]>>(files: &[(N, D)]) -> Result<Vec<u8>, PackError> {
    let count = u32::try_from(files.len())
        .ok()
        .filter(|&n| n <= MAX_FILES)
        .ok_or(PackError::TooManyFiles { count: files.len(), max: MAX_FILES })?;
    for (index, (name, _)) in files.iter().enumerate() {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(PackError::EmptyName { index });
        }
        if name.len() > NAME_LEN {
            return Err(PackError::NameTooLong { index, len: name.len() });
        }
        if name.contains('\0') {
            return Err(PackError::NameHasNul { index });
        }
    }
    let mut by_name: Vec<usize> = (0..files.len()).collect();
    by_name.sort_by(|&a, &b| files[a].0.as_ref().cmp(files[b].0.as_ref()).then(a.cmp(&b)));
    for w in by_name.windows(2) {
        if files[w[0]].0.as_ref() == files[w[1]].0.as_ref() {
            return Err(PackError::DuplicateName { index: w[1], first: w[0] });
        }
    }
    let header = Header::new(count, 0, 0);
    let data_pages: u64 = files.iter().map(|(_, d)| pages_for(d.as_ref().len() as u64)).sum();
    let total_pages = header.data_start + data_pages;
    let mut image = vec![0u8; total_pages as usize * PAGE_SIZE];
    let mut next = header.data_start;
    for (i, (name, data)) in files.iter().enumerate() {
        let data = data.as_ref();
        let entry = FileEntry {
            name: FileName::from_field(name.as_ref().as_bytes()),
            start_page: next,
            len: data.len() as u64,
            fnv: fnv1a64(data),
        };
        let at = TABLE_START as usize * PAGE_SIZE + i * ENTRY_SIZE;
        image[at..at + ENTRY_SIZE].copy_from_slice(&entry.encode());
        let from = next as usize * PAGE_SIZE;
        image[from..from + data.len()].copy_from_slice(data);
        next += entry.pages();
    }
    image[..PAGE_SIZE].copy_from_slice(&Header { total_pages, ..header }.encode());
    seal(&mut image);
    Ok(image)
}

/// Recompute the table checksum and then the header checksum of an image in memory, from its header's
/// table start and table pages (clamped to the image). [`pack`] ends with it; tests use it after
/// changing one field, so the image is wrong in that way only.
pub fn seal(image: &mut [u8]) {
    use header_offset as o;
    if image.len() < PAGE_SIZE {
        return;
    }
    let start = u64_at(image, o::TABLE_START).saturating_mul(PAGE_SIZE as u64);
    let end = start.saturating_add(u64_at(image, o::TABLE_PAGES).saturating_mul(PAGE_SIZE as u64));
    let clamp = |x: u64| x.min(image.len() as u64) as usize;
    let table_fnv = fnv1a64(&image[clamp(start)..clamp(end)]);
    put_u64(image, o::TABLE_FNV, table_fnv);
    let header_fnv = fnv1a64(&image[..o::CHECKED_LEN]);
    put_u64(image, o::HEADER_FNV, header_fnv);
}

/// A parsed image: its header and its file table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub header: Header,
    pub files: Vec<FileEntry>,
}

impl Image {
    /// Validate page 0 of a disk of `disk_pages` pages: magic, version, header checksum, entry size,
    /// file count, the layout fields, and that the image fits on the disk.
    pub fn parse_header(page0: &[u8; PAGE_SIZE], disk_pages: u64) -> Result<Header, ImageError> {
        use header_offset as o;
        let p = &page0[..];
        let mut magic = [0; 8];
        magic.copy_from_slice(&p[o::MAGIC..o::MAGIC + 8]);
        if magic != MAGIC {
            return Err(ImageError::BadMagic { found: magic });
        }
        let version = u32_at(p, o::VERSION);
        if version != VERSION {
            return Err(ImageError::BadVersion { found: version });
        }
        let (stored, computed) = (u64_at(p, o::HEADER_FNV), fnv1a64(&p[..o::CHECKED_LEN]));
        if stored != computed {
            return Err(ImageError::HeaderChecksum { stored, computed });
        }
        let entry_size = u32_at(p, o::ENTRY_SIZE);
        if entry_size as usize != ENTRY_SIZE {
            return Err(ImageError::BadEntrySize { found: entry_size });
        }
        let file_count = u32_at(p, o::FILE_COUNT);
        if file_count > MAX_FILES {
            return Err(ImageError::TooManyFiles { count: file_count, max: MAX_FILES });
        }
        let h = Header {
            file_count,
            table_start: u64_at(p, o::TABLE_START),
            table_pages: u64_at(p, o::TABLE_PAGES),
            data_start: u64_at(p, o::DATA_START),
            total_pages: u64_at(p, o::TOTAL_PAGES),
            table_fnv: u64_at(p, o::TABLE_FNV),
        };
        let layout = |field, found, expected| {
            if found == expected { Ok(()) } else { Err(ImageError::BadLayout { field, found, expected }) }
        };
        layout("the table start page", h.table_start, TABLE_START)?;
        layout("the table's page count", h.table_pages, table_pages_for(file_count))?;
        layout("the data start page", h.data_start, h.table_start + h.table_pages)?;
        if h.total_pages < h.data_start {
            return Err(ImageError::BadLayout {
                field: "the total page count",
                found: h.total_pages,
                expected: h.data_start,
            });
        }
        if h.total_pages > disk_pages {
            return Err(ImageError::ImageBeyondDisk { total_pages: h.total_pages, disk_pages });
        }
        Ok(h)
    }

    /// Validate the file table (`table`: at least the header's table pages, read from page
    /// `header.table_start`): its checksum, then every entry's name and page range, then that names are
    /// unique and no two files share a page.
    pub fn parse_table(header: &Header, table: &[u8], disk_pages: u64) -> Result<Vec<FileEntry>, ImageError> {
        use entry_offset as o;
        let need = header.table_bytes();
        if (table.len() as u64) < need {
            return Err(ImageError::TruncatedTable { have: table.len() as u64, need });
        }
        let table = &table[..need as usize];
        let computed = fnv1a64(table);
        if computed != header.table_fnv {
            return Err(ImageError::TableChecksum { stored: header.table_fnv, computed });
        }
        let mut files = Vec::with_capacity(header.file_count as usize);
        for (i, e) in table.as_chunks::<ENTRY_SIZE>().0.iter().take(header.file_count as usize).enumerate() {
            let index = i as u32;
            let field = &e[o::NAME..o::NAME + NAME_LEN];
            let full_name = FileName::from_field(field);
            let name = ErrorName::of(&full_name);
            if full_name.len == 0 {
                return Err(ImageError::EmptyName { index });
            }
            if field[usize::from(full_name.len)..].iter().any(|&b| b != 0) {
                return Err(ImageError::BadName { index, name, why: "bytes after its NUL padding" });
            }
            if core::str::from_utf8(&field[..usize::from(full_name.len)]).is_err() {
                return Err(ImageError::BadName { index, name, why: "not UTF-8" });
            }
            let entry = FileEntry {
                name: full_name,
                start_page: u64_at(e, o::START_PAGE),
                len: u64_at(e, o::LENGTH),
                fnv: u64_at(e, o::FNV),
            };
            let start = entry.start_page;
            let end = start.checked_add(entry.pages());
            match end {
                Some(end) if end <= disk_pages => {
                    if start < header.data_start || end > header.total_pages {
                        return Err(ImageError::FileOutsideData {
                            index,
                            name,
                            start,
                            end,
                            data_start: header.data_start,
                            total_pages: header.total_pages,
                        });
                    }
                }
                _ => {
                    let end = end.unwrap_or(u64::MAX);
                    return Err(ImageError::FileBeyondDisk { index, name, start, end, disk_pages });
                }
            }
            files.push(entry);
        }
        let mut order: Vec<u32> = (0..header.file_count).collect();
        order.sort_by(|&a, &b| files[a as usize].name.cmp(&files[b as usize].name).then(a.cmp(&b)));
        for w in order.windows(2) {
            let (a, b) = (&files[w[0] as usize], &files[w[1] as usize]);
            if a.name == b.name {
                return Err(ImageError::DuplicateName { index: w[1], first: w[0], name: ErrorName::of(&b.name) });
            }
        }
        order.retain(|&i| files[i as usize].len > 0);
        order.sort_by_key(|&i| (files[i as usize].start_page, i));
        for w in order.windows(2) {
            let (a, b) = (&files[w[0] as usize], &files[w[1] as usize]);
            if a.page_range().end > b.start_page {
                let (first, second) = (w[0].min(w[1]), w[0].max(w[1]));
                return Err(ImageError::Overlap {
                    first,
                    first_name: ErrorName::of(&files[first as usize].name),
                    second,
                    second_name: ErrorName::of(&files[second as usize].name),
                    page: b.start_page,
                });
            }
        }
        Ok(files)
    }

    /// Parse a whole image held in memory (the disk is `bytes`, whole pages of it).
    pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
        let disk_pages = (bytes.len() / PAGE_SIZE) as u64;
        let page0: &[u8; PAGE_SIZE] =
            bytes.get(..PAGE_SIZE).and_then(|p| p.try_into().ok()).ok_or(ImageError::NoHeader { disk_pages })?;
        let header = Self::parse_header(page0, disk_pages)?;
        let from = header.table_start as usize * PAGE_SIZE;
        let files = Self::parse_table(&header, &bytes[from..], disk_pages)?;
        Ok(Image { header, files })
    }

    /// The inode (table index) and entry of the file called `name`.
    pub fn file(&self, name: &str) -> Option<(u32, &FileEntry)> {
        self.files.iter().enumerate().find(|(_, f)| f.name() == name).map(|(i, f)| (i as u32, f))
    }

    /// The bytes of `entry` in `image` (the image this was parsed from).
    pub fn data<'a>(&self, image: &'a [u8], entry: &FileEntry) -> &'a [u8] {
        let from = entry.start_page as usize * PAGE_SIZE;
        &image[from..from + entry.len as usize]
    }
}

#[cfg(test)]
mod tests;
