//! The file system room: the file disk (this file: read-only files on the virtio-blk disk with serial
//! `files`, read a page at a time) and the page cache over it with cleancache below ([`pagecache`]).
//!
//! # Why
//!
//! cleancache caches *clean file pages*, so zkernel needs files whose pages it can drop and read again.
//! A file system would be a project of its own; a read-only image with a table of files is enough.
//! xtask packs a directory (by default this repository's docs, sources and `data/`) into
//! the format of `kernel/libs/fsimage` (its header is the byte-level spec; `docs/filedisk.md` the
//! tour) and attaches it read-only next to the swap disk. This file mounts it: it reads page 0 and the
//! file table, lets `fsimage` validate every field, and then serves file pages by *inode* (the file's
//! index in the table) and page index, the key cleancache uses (`cleancache_get(pool, inode, index)`).
//!
//! # Vocabulary
//!
//! | term | here | Linux |
//! |---|---|---|
//! | inode | index of the file in the table, `u32` | `struct inode`, `i_ino` |
//! | page index | page of the file, `0 .. pages(inode)` | `page->index` |
//! | disk page | `start_page + index` on the virtio disk | the block a `bio` reads |
//!
//! # Contracts
//!
//! * [`mount`] refuses a bad image with a [`MountError`] that says what is wrong ("file 3 (docs/x.md):
//!   pages 900..905 beyond the disk's 800 pages"); it reads only the header and the table, not the
//!   files. Mounting is not done at boot: the workloads call [`mount_files_disk`].
//! * [`FileDisk::read_page`] of a page at or past the file's end is [`FsError::PastEnd`]; an unknown
//!   inode is [`FsError::NoSuchFile`]; on an error the caller's buffer is left as it was, except for a
//!   disk error, after which its contents are unspecified. Bytes past the file's length in its last
//!   page read as zeros (the image stores zeros there; the read enforces it anyway).
//! * [`FileDisk::verify`] reads a whole file and compares its FNV-1a 64 with the table's.
//! * [`mount_with`] mounts any [`PageSource`], e.g. an image in memory ([`MemDisk`]): how the test
//!   kernel shows that corrupt images are refused without a corrupt disk.
//! * Nothing here needs `unsafe_code` (the room denies it): the disk driver owns the DMA.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub mod pagecache;

pub use fsimage;
pub use fsimage::{FileEntry, Header, ImageError};
use spin::Mutex;

use crate::drivers::virtio_blk::{self, BlkDisk, BlkError, PAGE_SIZE};

/// The serial xtask gives the file disk.
pub const DISK_NAME: &str = "files";

/// Where a file disk's pages come from: the virtio disk, or an image in memory.
pub trait PageSource {
    /// Whole pages the source holds.
    fn capacity_pages(&self) -> u64;
    /// Read page `index` into `out`.
    fn read_page(&mut self, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), BlkError>;
}

impl PageSource for &'static Mutex<BlkDisk> {
    fn capacity_pages(&self) -> u64 {
        self.lock().capacity_pages()
    }

    fn read_page(&mut self, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), BlkError> {
        self.lock().read_page(index, out)
    }
}

/// An image held in memory, read as a disk of `bytes.len() / 4096` pages (a partial last page is not
/// part of the disk, as on a virtio disk).
#[derive(Debug, Clone)]
pub struct MemDisk {
    pub bytes: Vec<u8>,
}

impl PageSource for MemDisk {
    fn capacity_pages(&self) -> u64 {
        (self.bytes.len() / PAGE_SIZE) as u64
    }

    fn read_page(&mut self, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), BlkError> {
        let capacity = self.capacity_pages();
        if index >= capacity {
            return Err(BlkError::OutOfRange { index, capacity });
        }
        let from = index as usize * PAGE_SIZE;
        out.copy_from_slice(&self.bytes[from..from + PAGE_SIZE]);
        Ok(())
    }
}

/// Why a file disk was not mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountError {
    /// No virtio disk with serial `files` (xtask attaches one to every run).
    NoDisk,
    /// Reading the header or the table failed.
    Disk { page: u64, error: BlkError },
    /// The header or the table is not a valid image.
    Image(ImageError),
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::NoDisk => write!(f, "no virtio disk \"{DISK_NAME}\""),
            MountError::Disk { page, error } => write!(f, "reading page {page} of the file disk: {error:?}"),
            MountError::Image(e) => write!(f, "corrupt file image: {e}"),
        }
    }
}

impl From<ImageError> for MountError {
    fn from(e: ImageError) -> Self {
        MountError::Image(e)
    }
}

/// Why a file read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// No file has this inode.
    NoSuchFile { inode: u32 },
    /// Page `index` is at or past the file's end (it has `pages` pages).
    PastEnd { inode: u32, index: u64, pages: u64 },
    /// The disk refused disk page `page`.
    Disk { inode: u32, page: u64, error: BlkError },
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NoSuchFile { inode } => write!(f, "no file with inode {inode}"),
            FsError::PastEnd { inode, index, pages } => {
                write!(f, "inode {inode}: page {index} is past the file's end ({pages} pages)")
            }
            FsError::Disk { inode, page, error } => write!(f, "inode {inode}: disk page {page}: {error:?}"),
        }
    }
}

/// Counters of one mounted file disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Pages read from the disk: header and table at mount, then file pages.
    pub pages_read: u64,
    /// File pages served by [`FileDisk::read_page`].
    pub file_pages_read: u64,
    /// Reads refused or failed (past the end, no such file, disk errors).
    pub errors: u64,
    /// Files [`FileDisk::verify`] read whole, and how many of them did not match the table.
    pub files_verified: u64,
    pub checksum_mismatches: u64,
}

/// A mounted file disk.
#[derive(Debug)]
pub struct FileDisk<S: PageSource = &'static Mutex<BlkDisk>> {
    source: S,
    header: Header,
    files: Vec<FileEntry>,
    stats: FsStats,
}

/// Mount the virtio disk with serial `files`.
pub fn mount_files_disk() -> Result<FileDisk, MountError> {
    mount(virtio_blk::disk(DISK_NAME).ok_or(MountError::NoDisk)?)
}

/// Mount `disk`: read and validate its header and file table, and log what it holds.
pub fn mount(disk: &'static Mutex<BlkDisk>) -> Result<FileDisk, MountError> {
    let fd = mount_with(disk)?;
    let bytes: u64 = fd.files.iter().map(|f| f.len).sum();
    let disk_name = alloc::string::String::from(disk.lock().name());
    log::info!("files: {} files, {} KiB, on virtio disk \"{disk_name}\"", fd.files.len(), bytes / 1024);
    Ok(fd)
}

/// Mount any page source (the real disk, or an image in memory for tests).
pub fn mount_with<S: PageSource>(mut source: S) -> Result<FileDisk<S>, MountError> {
    let disk_pages = source.capacity_pages();
    if disk_pages == 0 {
        return Err(ImageError::NoHeader { disk_pages }.into());
    }
    let mut stats = FsStats::default();
    let mut page0 = [0u8; PAGE_SIZE];
    source.read_page(0, &mut page0).map_err(|error| MountError::Disk { page: 0, error })?;
    stats.pages_read += 1;
    let header = fsimage::Image::parse_header(&page0, disk_pages)?;
    // The header was validated: the table is at most 2048 pages and lies on the disk.
    let mut table = vec![0u8; header.table_bytes() as usize];
    for (i, chunk) in table.as_chunks_mut::<PAGE_SIZE>().0.iter_mut().enumerate() {
        let page = header.table_start + i as u64;
        source.read_page(page, chunk).map_err(|error| MountError::Disk { page, error })?;
        stats.pages_read += 1;
    }
    let files = fsimage::Image::parse_table(&header, &table, disk_pages)?;
    Ok(FileDisk { source, header, files, stats })
}

impl<S: PageSource> FileDisk<S> {
    /// The file table; a file's inode is its index here.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The image's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inode of the file called `name` (a relative path such as `docs/swap.md`).
    pub fn file(&self, name: &str) -> Option<u32> {
        self.files.iter().position(|f| f.name() == name).map(|i| i as u32)
    }

    /// The table entry of `inode`.
    pub fn entry(&self, inode: u32) -> Result<&FileEntry, FsError> {
        self.files.get(inode as usize).ok_or(FsError::NoSuchFile { inode })
    }

    /// Length of the file in bytes.
    pub fn len(&self, inode: u32) -> Result<u64, FsError> {
        self.entry(inode).map(|e| e.len)
    }

    /// Pages of the file: `ceil(len / 4096)`.
    pub fn pages(&self, inode: u32) -> Result<u64, FsError> {
        self.entry(inode).map(FileEntry::pages)
    }

    pub fn stats(&self) -> FsStats {
        self.stats
    }

    /// Read page `index` of file `inode` into `out`; bytes past the file's end read as zeros.
    pub fn read_page(&mut self, inode: u32, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), FsError> {
        let r = self.read_page_inner(inode, index, out);
        match r {
            Ok(()) => self.stats.file_pages_read += 1,
            Err(_) => self.stats.errors += 1,
        }
        r
    }

    fn read_page_inner(&mut self, inode: u32, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), FsError> {
        let e = *self.entry(inode)?;
        if index >= e.pages() {
            return Err(FsError::PastEnd { inode, index, pages: e.pages() });
        }
        // In range: mount checked start_page + pages() against the disk.
        let page = e.start_page + index;
        self.source.read_page(page, out).map_err(|error| FsError::Disk { inode, page, error })?;
        self.stats.pages_read += 1;
        out[e.bytes_in_page(index)..].fill(0);
        Ok(())
    }

    /// Read the whole file and compare its FNV-1a 64 with the table's: `Ok(true)` when they match.
    pub fn verify(&mut self, inode: u32) -> Result<bool, FsError> {
        let e = *self.entry(inode)?;
        let mut hash = fnv1a::Fnv1a::new();
        let mut page = [0u8; PAGE_SIZE];
        for index in 0..e.pages() {
            self.read_page(inode, index, &mut page)?;
            hash = hash.write(&page[..e.bytes_in_page(index)]);
        }
        let ok = hash.finish() == e.fnv;
        self.stats.files_verified += 1;
        if !ok {
            self.stats.checksum_mismatches += 1;
        }
        Ok(ok)
    }

    /// The page source (e.g. to read the virtio disk's own counters).
    pub fn source(&self) -> &S {
        &self.source
    }
}
