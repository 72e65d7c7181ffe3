//! Fuzz target `page_file`: the page-file reader of `cargo xtask run --pages` fed arbitrary files.
//!
//! # Why
//!
//! A page file is the user's file: raw 4096-byte pages or gzip of them, unpacked by xtask and handed to
//! the kernel as its ramdisk with the checksum `ramdisk_fnv`. [`pagefile::read`] (the code xtask's
//! `pages::prepare` calls) must refuse every bad file with a typed error and never hand on pages that
//! differ from what the file holds. Random bytes almost never make valid gzip, so the input may ask the
//! target to gzip its bytes first — in one member, in two, or with bytes after it — to reach the
//! unpacked size checks and the member rules.
//!
//! # Input layout
//!
//! | bytes | meaning |
//! |---|---|
//! | 0, bits 0..2 | mode: 0 the rest is the file; 1 gzip the rest; 2 gzip it as two members; 3 gzip it, then append a tail |
//! | 0, bits 2..6 | compression level for modes 1–3 (0..=15, capped at 9; 0 is stored blocks) |
//! | 1 (modes 2, 3) | mode 2: where the pages split between the members, as a fraction `b / 256` of them; mode 3: the tail's length (its last bytes) |
//! | rest | the file (mode 0) or the pages (modes 1–3) |
//!
//! # What is checked
//!
//! - [`pagefile::read`] never panics, and every error prints.
//! - `Ok`: at least one page, whole pages, `fnv` = `fnv1a64` of the pages, the encoding is what the first
//!   two bytes say; a raw file's pages are the file; a gzip file's pages gzipped again read back equal.
//! - A raw file's error is exactly the size rule's ([`pagefile::check`]), never a gzip error.
//! - Modes 1 and 2: the result is what the pages give as a raw file (`gzip -d` of two members is their
//!   concatenation): the same error, or the same pages and checksum.
//! - Mode 3: a tail that does not start a gzip member is refused as bad gzip, never ignored.
//!
//! # Worked example
//!
//! Input `01` followed by 4096 bytes: the target gzips the page (level 0), `read` unpacks it and returns
//! one page, `Encoding::Gzip`, whose checksum equals that of the 4096 bytes read raw. Input `02 80`
//! followed by 8192 bytes: two members of 4096 bytes each, read as the same two pages.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use pagefile::{Encoding, GZIP_MAGIC, PAGE_SIZE, PageFileError, encoding, read};

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    gz.write_all(bytes).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

/// The rules every result obeys, whatever the mode.
fn check_any(file: &[u8]) {
    let result = read(file);
    match &result {
        Ok(p) => {
            assert!(p.pages >= 1);
            assert_eq!(p.bytes.len() as u64, p.pages * PAGE_SIZE as u64);
            assert_eq!(p.fnv, fnv1a::fnv1a64(&p.bytes));
            assert_eq!(p.encoding, encoding(file));
            match p.encoding {
                Encoding::Raw => assert_eq!(&p.bytes[..], file),
                Encoding::Gzip => {
                    let again = gzip(&p.bytes, 1);
                    let back = read(&again).expect("gzip of good pages reads");
                    assert_eq!((&back.bytes[..], back.fnv), (&p.bytes[..], p.fnv));
                }
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if encoding(file) == Encoding::Raw {
                assert_eq!(Err(e.clone()), pagefile::check(file), "a raw file's error is the size rule's");
            }
        }
    }
}

/// `read(file)` gives what the pages `raw` give as a raw file, but as gzip.
fn check_same_as_raw(file: &[u8], raw: &[u8]) {
    let got = read(file);
    match pagefile::check(raw) {
        Err(e) => assert_eq!(got.map(|p| p.pages), Err(e)),
        Ok(()) => {
            let p = got.expect("gzip of whole pages reads");
            assert_eq!(p.encoding, Encoding::Gzip);
            assert_eq!((p.pages, p.fnv), ((raw.len() / PAGE_SIZE) as u64, fnv1a::fnv1a64(raw)));
            assert!(p.bytes[..] == *raw, "unpacked pages differ from the pages gzipped");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let level = u32::from(head >> 2 & 0xf).min(9);
    match head & 3 {
        0 => check_any(rest),
        1 => {
            let file = gzip(rest, level);
            check_any(&file);
            check_same_as_raw(&file, rest);
        }
        2 => {
            let Some((&at, pages)) = rest.split_first() else { return };
            let (a, b) = pages.split_at(pages.len() * usize::from(at) / 256);
            let file = [gzip(a, level), gzip(b, level)].concat();
            check_any(&file);
            check_same_as_raw(&file, pages);
        }
        _ => {
            let Some((&n, body)) = rest.split_first() else { return };
            let (pages, tail) = body.split_at(body.len().saturating_sub(usize::from(n)));
            let mut file = gzip(pages, level);
            file.extend_from_slice(tail);
            check_any(&file);
            if tail.is_empty() {
                check_same_as_raw(&file, pages);
            } else if !tail.starts_with(&GZIP_MAGIC) {
                let got = read(&file).map(|p| p.pages);
                assert!(
                    matches!(got, Err(PageFileError::BadGzip { .. })),
                    "{} bytes after the member: {got:?}",
                    tail.len()
                );
            }
        }
    }
});
