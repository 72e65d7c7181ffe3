//! Fuzz target `fsimage_parse`: the file disk's image parser fed arbitrary disks.
//!
//! # Why
//!
//! The kernel mounts whatever disk QEMU attaches as serial `files` with [`Image::parse_header`] and
//! [`Image::parse_table`]; fsimage promises that they never panic and never trust a field before checking
//! it. Random bytes alone stop at the magic or the header checksum, so the input may ask for the image
//! to be *sealed* first (both checksums recomputed, [`fsimage::seal`]): then the fuzzer reaches every
//! layout and table rule behind them.
//!
//! # Input layout
//!
//! | bytes | meaning |
//! |---|---|
//! | 0, bit 0 | seal the image before parsing |
//! | 0, bits 4..8 | append this many zero pages (0..=15): room for files the table points at |
//! | 1.. | the disk, from page 0 (a last partial page is not part of the disk, as on a block device) |
//!
//! # What is checked
//!
//! - Neither parser panics; a disk shorter than a page is `NoHeader`.
//! - [`Image::parse`] equals the kernel's two steps, header then table.
//! - A parsed image's files are all reachable ([`Image::data`], [`Image::file`] finds each by name), and
//!   packing them again ([`fsimage::pack`]) gives an image that parses to the same names and lengths.
//! - Every error prints ([`core::fmt::Display`]) without panicking.
//!
//! # Worked example
//!
//! Input `01` followed by `corpus/fsimage_parse/three-files.img` (3 pages): sealed (already so), parsed
//! to three files; `pack` of those files makes the same 3 pages back.
#![no_main]

use fsimage::{Image, ImageError, PAGE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, disk)) = data.split_first() else { return };
    let mut image = disk.to_vec();
    image.resize(image.len() + usize::from(flags >> 4) * PAGE_SIZE, 0);
    if flags & 1 != 0 {
        fsimage::seal(&mut image);
    }
    let disk_pages = (image.len() / PAGE_SIZE) as u64;
    let whole = Image::parse(&image);

    let Some(page0) = image.get(..PAGE_SIZE).and_then(|p| <&[u8; PAGE_SIZE]>::try_from(p).ok()) else {
        assert_eq!(whole, Err(ImageError::NoHeader { disk_pages }));
        return;
    };
    let stepwise = Image::parse_header(page0, disk_pages).and_then(|header| {
        let from = usize::try_from(header.table_start).expect("a checked table start fits") * PAGE_SIZE;
        let files = Image::parse_table(&header, &image[from..], disk_pages)?;
        Ok(Image { header, files })
    });
    assert_eq!(whole, stepwise, "Image::parse differs from parse_header + parse_table");

    match whole {
        Ok(parsed) => {
            let files: Vec<(&str, &[u8])> = parsed.files.iter().map(|f| (f.name(), parsed.data(&image, f))).collect();
            for (i, (name, bytes)) in files.iter().enumerate() {
                assert_eq!(bytes.len() as u64, parsed.files[i].len);
                assert_eq!(parsed.file(name).map(|(inode, _)| inode), Some(i as u32), "{name:?} found at its inode");
            }
            let repacked = fsimage::pack(&files).expect("a parsed image's files pack again");
            let again = Image::parse(&repacked).expect("a packed image parses");
            let shape = |img: &Image| img.files.iter().map(|f| (f.name().to_owned(), f.len)).collect::<Vec<_>>();
            assert_eq!(shape(&again), shape(&parsed), "pack(parse(image)) keeps names and lengths");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
