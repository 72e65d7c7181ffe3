//! The file disk: xtask packs the repository's docs and sources (and ../shared/data) into the fsimage
//! format and attaches it read-only as virtio disk "files". Mounting it finds every file, every file
//! reads back with the checksum in the table, reading past a file's end is refused, a last page ends in
//! zeros, and images that are corrupt in one way each are refused at mount with that reason.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use zkernel::arch::tsc;
use zkernel::drivers::virtio_blk::{self, BlkError, PAGE_SIZE};
use zkernel::fs::fsimage::{self, ImageError, entry_offset, header_offset};
use zkernel::fs::{self, FileDisk, FsError, MemDisk, MountError, PageSource};
use zkernel::harness::testing::Case;
use zkernel::println;

zkernel::test_kernel!(
    "filedisk",
    &[
        Case::returns("files_disk_is_attached_read_only", files_disk_is_attached_read_only),
        Case::returns("mount_lists_the_repository", mount_lists_the_repository),
        Case::returns("every_file_matches_its_checksum", every_file_matches_its_checksum),
        Case::returns("a_file_reads_back_as_its_text", a_file_reads_back_as_its_text),
        Case::returns("reading_at_the_end_is_past_end", reading_at_the_end_is_past_end),
        Case::returns("the_last_page_ends_in_zeros", the_last_page_ends_in_zeros),
        Case::returns("stats_count_pages_read", stats_count_pages_read),
        Case::returns("an_image_in_memory_mounts", an_image_in_memory_mounts),
        Case::returns("corrupt_images_are_refused", corrupt_images_are_refused),
        Case::returns("the_real_table_on_a_short_disk_is_refused", the_real_table_on_a_short_disk_is_refused),
        Case::returns("disk_errors_at_mount_are_reported", disk_errors_at_mount_are_reported),
    ]
);

fn mounted() -> FileDisk {
    fs::mount_files_disk().unwrap_or_else(|e| panic!("mounting the files disk: {e}"))
}

fn inode(fd: &FileDisk, name: &str) -> u32 {
    fd.file(name).unwrap_or_else(|| panic!("{name} is on the files disk"))
}

fn files_disk_is_attached_read_only() {
    let disk = virtio_blk::disk(fs::DISK_NAME).expect("xtask attached a disk with serial \"files\"").lock();
    assert!(disk.readonly(), "attached with readonly=on");
    assert!(disk.capacity_pages() > 2, "{} pages", disk.capacity_pages());
    println!("files disk at PCI {}: {} pages", disk.location(), disk.capacity_pages());
    let mut disk = disk;
    assert_eq!(disk.write_page(0, &[0; PAGE_SIZE]), Err(BlkError::ReadOnly));
}

fn mount_lists_the_repository() {
    let fd = mounted();
    let h = fd.header();
    println!("{} files, table {} page(s), data {}..{}", fd.files().len(), h.table_pages, h.data_start, h.total_pages);
    for name in ["README.md", "tests/filedisk.rs", "kernel/src/fs/mod.rs", "kernel/libs/fsimage/src/lib.rs"] {
        let ino = inode(&fd, name);
        assert_eq!(fd.files()[ino as usize].name(), name);
    }
    if let Some(ino) = fd.file("shared/data/perl-heap.pages.gz") {
        println!("sample data: {} bytes", fd.len(ino).unwrap());
    }
    assert_eq!(fd.file("no/such/file"), None);
}

fn every_file_matches_its_checksum() {
    let mut fd = mounted();
    let start = tsc::rdtsc();
    let (mut pages, mut bytes) = (0, 0);
    for ino in 0..fd.files().len() as u32 {
        let ok = fd.verify(ino).unwrap_or_else(|e| panic!("verify({ino}): {e}"));
        let e = fd.files()[ino as usize];
        assert!(ok, "file {ino} ({}) does not match its checksum {:#x}", e.name(), e.fnv);
        pages += e.pages();
        bytes += e.len;
    }
    let s = fd.stats();
    assert_eq!(s.files_verified, fd.files().len() as u64);
    assert_eq!(s.checksum_mismatches, 0);
    assert_eq!(s.file_pages_read, pages);
    let ms = tsc::centi_ns(tsc::rdtsc() - start) / 100_000_000;
    println!("{} files, {} KiB in {pages} pages verified in {ms} ms", fd.files().len(), bytes / 1024);
}

fn a_file_reads_back_as_its_text() {
    let mut fd = mounted();
    let ino = inode(&fd, "tests/filedisk.rs");
    let mut page = [0u8; PAGE_SIZE];
    fd.read_page(ino, 0, &mut page).unwrap();
    assert!(page.starts_with(b"//! The file disk: xtask packs"), "this very file, read from the disk");
    let ino = inode(&fd, "README.md");
    fd.read_page(ino, 0, &mut page).unwrap();
    assert!(page.starts_with(b"# zkernel"));
}

fn reading_at_the_end_is_past_end() {
    let mut fd = mounted();
    let mut page = [0x5au8; PAGE_SIZE];
    for name in ["README.md", "kernel/src/fs/mod.rs"] {
        let ino = inode(&fd, name);
        let pages = fd.pages(ino).unwrap();
        assert!(pages > 0);
        fd.read_page(ino, pages - 1, &mut page).unwrap();
        page.fill(0x5a);
        for index in [pages, pages + 1, u64::MAX] {
            assert_eq!(fd.read_page(ino, index, &mut page), Err(FsError::PastEnd { inode: ino, index, pages }));
        }
        assert!(page.iter().all(|&b| b == 0x5a), "a refused read leaves the buffer alone");
    }
    let n = fd.files().len() as u32;
    assert_eq!(fd.read_page(n, 0, &mut page), Err(FsError::NoSuchFile { inode: n }));
    assert_eq!(fd.len(n), Err(FsError::NoSuchFile { inode: n }));
    assert_eq!(fd.verify(n), Err(FsError::NoSuchFile { inode: n }));
    assert_eq!(fd.stats().errors, 7);
}

fn the_last_page_ends_in_zeros() {
    let mut fd = mounted();
    let mut checked = 0;
    for ino in 0..fd.files().len() as u32 {
        let e = fd.files()[ino as usize];
        let tail = (e.len % PAGE_SIZE as u64) as usize;
        if tail == 0 {
            continue;
        }
        let mut page = [0xffu8; PAGE_SIZE];
        fd.read_page(ino, e.pages() - 1, &mut page).unwrap();
        assert!(page[tail..].iter().all(|&b| b == 0), "{}: bytes {tail}.. of the last page are zero", e.name());
        checked += 1;
        if checked == 8 {
            break;
        }
    }
    assert!(checked > 0, "some file does not end on a page boundary");
}

fn stats_count_pages_read() {
    let mut fd = mounted();
    let mount_pages = 1 + fd.header().table_pages;
    assert_eq!(fd.stats().pages_read, mount_pages, "mount reads the header and the table only");
    let ino = inode(&fd, "README.md");
    let disk_before = fd.source().lock().stats();
    let mut page = [0u8; PAGE_SIZE];
    for index in 0..fd.pages(ino).unwrap() {
        fd.read_page(ino, index, &mut page).unwrap();
    }
    let n = fd.pages(ino).unwrap();
    assert_eq!(fd.stats().pages_read, mount_pages + n);
    assert_eq!(fd.stats().file_pages_read, n);
    assert_eq!(fd.source().lock().stats().reads - disk_before.reads, n, "one disk read per page");
}

/// A small image, packed in the kernel.
fn small_image() -> Vec<u8> {
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let files: [(&str, &[u8]); 4] =
        [("a.txt", b"hello, file disk\n"), ("dir/big.bin", &big), ("empty", b""), ("z", b"zz")];
    fsimage::pack(&files).expect("packs")
}

fn an_image_in_memory_mounts() {
    let mut fd = fs::mount_with(MemDisk { bytes: small_image() }).unwrap();
    assert_eq!(fd.files().len(), 4);
    let big = fd.file("dir/big.bin").unwrap();
    assert_eq!((fd.len(big), fd.pages(big)), (Ok(10_000), Ok(3)));
    for ino in 0..4 {
        assert_eq!(fd.verify(ino), Ok(true));
    }
    let empty = fd.file("empty").unwrap();
    let mut page = [0u8; PAGE_SIZE];
    assert_eq!(fd.read_page(empty, 0, &mut page), Err(FsError::PastEnd { inode: empty, index: 0, pages: 0 }));
    fd.read_page(big, 2, &mut page).unwrap();
    assert!(page[..10_000 - 8192].iter().enumerate().all(|(i, &b)| b == ((8192 + i) % 253) as u8));
    assert!(page[10_000 - 8192..].iter().all(|&b| b == 0));
}

fn refused(bytes: Vec<u8>) -> ImageError {
    match fs::mount_with(MemDisk { bytes }) {
        Err(MountError::Image(e)) => {
            println!("  refused: {}", MountError::Image(e));
            e
        }
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a corrupt image was mounted"),
    }
}

fn put_u64(image: &mut [u8], at: usize, v: u64) {
    image[at..at + 8].copy_from_slice(&v.to_le_bytes());
    fsimage::seal(image);
}

fn corrupt_images_are_refused() {
    let good = small_image();
    let entry = |i: usize| PAGE_SIZE + i * fsimage::ENTRY_SIZE;

    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"NOTFILES");
    assert_eq!(refused(bad), ImageError::BadMagic { found: *b"NOTFILES" });

    let mut bad = good.clone();
    bad[entry(0)] = b'b'; // the table changed, its checksum did not
    assert!(matches!(refused(bad), ImageError::TableChecksum { .. }));

    let mut bad = good.clone();
    bad[header_offset::FILE_COUNT] = 5; // the header changed, its checksum did not
    assert!(matches!(refused(bad), ImageError::HeaderChecksum { .. }));

    let mut bad = good.clone();
    put_u64(&mut bad, entry(1) + entry_offset::START_PAGE, 900);
    let e = refused(bad);
    assert!(matches!(e, ImageError::FileBeyondDisk { index: 1, start: 900, end: 903, disk_pages: 7, .. }), "{e:?}");

    let mut bad = good.clone();
    put_u64(&mut bad, entry(3) + entry_offset::START_PAGE, 3);
    assert!(matches!(refused(bad), ImageError::Overlap { first: 1, second: 3, page: 3, .. }));

    let mut bad = good.clone();
    bad.copy_within(entry(0)..entry(0) + 8, entry(3));
    fsimage::seal(&mut bad);
    assert!(matches!(refused(bad), ImageError::DuplicateName { index: 3, first: 0, .. }));

    let mut bad = good.clone();
    bad.truncate(good.len() - PAGE_SIZE);
    assert_eq!(refused(bad), ImageError::ImageBeyondDisk { total_pages: 7, disk_pages: 6 });

    assert_eq!(refused(Vec::new()), ImageError::NoHeader { disk_pages: 0 });
}

/// The real disk's header and table, on a disk that ends right after the table: refused, since the
/// header says the image is longer than the disk. With the total patched down to fit, the first file
/// beyond the disk is named.
fn the_real_table_on_a_short_disk_is_refused() {
    let fd = mounted();
    let (data_start, total) = (fd.header().data_start, fd.header().total_pages);
    let disk = virtio_blk::disk(fs::DISK_NAME).unwrap();
    let mut copy = Vec::new();
    let mut page = [0u8; PAGE_SIZE];
    for i in 0..data_start {
        disk.lock().read_page(i, &mut page).unwrap();
        copy.extend_from_slice(&page);
    }
    assert_eq!(refused(copy.clone()), ImageError::ImageBeyondDisk { total_pages: total, disk_pages: data_start });
    put_u64(&mut copy, header_offset::TOTAL_PAGES, data_start);
    match refused(copy) {
        ImageError::FileBeyondDisk { index, start, disk_pages, .. } => {
            assert_eq!((start, disk_pages), (data_start, data_start));
            assert_eq!(fd.files()[index as usize].start_page, data_start);
        }
        e => panic!("{e:?}"),
    }
}

/// A source whose page 1 cannot be read.
struct FailingDisk(MemDisk);

impl PageSource for FailingDisk {
    fn capacity_pages(&self) -> u64 {
        self.0.capacity_pages()
    }

    fn read_page(&mut self, index: u64, out: &mut [u8; PAGE_SIZE]) -> Result<(), BlkError> {
        if index == 1 { Err(BlkError::Timeout) } else { self.0.read_page(index, out) }
    }
}

fn disk_errors_at_mount_are_reported() {
    let r = fs::mount_with(FailingDisk(MemDisk { bytes: small_image() }));
    assert_eq!(r.err(), Some(MountError::Disk { page: 1, error: BlkError::Timeout }));
}
