//! Host tests: each rule of [`read`] with the exact error it gives, raw and gzip.

use std::io::Write;

use super::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `n` pages of a pattern that differs from page to page.
fn pages(n: usize) -> Vec<u8> {
    (0..n * PAGE_SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

fn bad_gzip(file: &[u8]) -> String {
    match read(file) {
        Err(PageFileError::BadGzip { why }) => why,
        other => panic!("expected BadGzip, got {other:?}"),
    }
}

#[test]
fn raw_pages_are_borrowed_and_checksummed() {
    let bytes = pages(3);
    let p = read(&bytes).unwrap();
    assert_eq!((p.encoding, p.pages, p.fnv), (Encoding::Raw, 3, fnv1a::fnv1a64(&bytes)));
    assert!(matches!(p.bytes, Cow::Borrowed(b) if b.as_ptr() == bytes.as_ptr()));
}

#[test]
fn the_worked_example() {
    let p = read(&[0; 8192]).unwrap();
    assert_eq!((p.encoding, p.pages, p.fnv), (Encoding::Raw, 2, fnv1a::fnv1a64(&[0; 8192])));
    let file = gzip(&[0; 8192]);
    let z = read(&file).unwrap();
    assert_eq!((z.encoding, z.pages, z.fnv, &z.bytes[..]), (Encoding::Gzip, 2, p.fnv, &p.bytes[..]));
    let e = read(&[0; 5000]).unwrap_err();
    assert_eq!(e, PageFileError::NotWholePages { len: 5000 });
    assert_eq!(e.to_string(), "5000 bytes is not a whole number of 4096-byte pages");
}

#[test]
fn sizes_are_checked_raw() {
    assert_eq!(read(&[]), Err(PageFileError::Empty));
    assert_eq!(read(&[]).unwrap_err().to_string(), "it is empty");
    assert_eq!(read(&[0; 4095]), Err(PageFileError::NotWholePages { len: 4095 }));
    assert_eq!(read(&[0; 4097]), Err(PageFileError::NotWholePages { len: 4097 }));
    assert_eq!(read(&[0; 1]), Err(PageFileError::NotWholePages { len: 1 }));
    assert!(read(&[0; 4096]).is_ok());
    // One byte of the magic is not the magic: a raw file.
    assert_eq!(read(&[0x1f]), Err(PageFileError::NotWholePages { len: 1 }));
    let mut page = vec![0x8b; PAGE_SIZE];
    page[0] = 0x1f;
    page[1] = 0x8c;
    assert_eq!(read(&page).unwrap().encoding, Encoding::Raw);
}

#[test]
fn sizes_are_checked_after_unpacking() {
    assert_eq!(read(&gzip(&[])), Err(PageFileError::Empty));
    assert_eq!(read(&gzip(&[7; 5000])), Err(PageFileError::NotWholePages { len: 5000 }));
    let bytes = pages(3);
    let file = gzip(&bytes);
    let p = read(&file).unwrap();
    assert_eq!((p.encoding, p.pages, p.fnv), (Encoding::Gzip, 3, fnv1a::fnv1a64(&bytes)));
    assert_eq!(&p.bytes[..], &bytes[..]);
}

#[test]
fn a_raw_page_that_starts_with_the_magic_is_read_as_gzip() {
    // The rule is the first two bytes, nothing else: such a raw file cannot be given unpacked.
    let mut page = vec![0; PAGE_SIZE];
    page[..2].copy_from_slice(&GZIP_MAGIC);
    assert_eq!(encoding(&page), Encoding::Gzip);
    assert!(matches!(read(&page), Err(PageFileError::BadGzip { .. })));
}

#[test]
fn broken_gzip_is_refused_with_the_reason() {
    assert_eq!(bad_gzip(&GZIP_MAGIC), "unexpected end of file");
    assert_eq!(bad_gzip(&[0x1f, 0x8b, 0, 0]), "unexpected end of file");
    let good = gzip(&pages(2));
    // Cut short: inside the deflate data, and inside the trailer.
    assert_eq!(bad_gzip(&good[..good.len() / 2]), "incomplete deflate stream");
    assert_eq!(bad_gzip(&good[..good.len() - 4]), "unexpected end of file");
    // The trailer's CRC-32 and length: a flipped bit in either is a checksum error.
    let n = good.len();
    for at in [n - 8, n - 1] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        assert_eq!(bad_gzip(&bad), "corrupt gzip stream does not have a matching checksum", "byte {at}");
    }
    // Compression method 9 (only 8, deflate, exists).
    let mut bad = good.clone();
    bad[2] = 9;
    assert!(!bad_gzip(&bad).is_empty());
    let e = read(&good[..5]).unwrap_err();
    assert_eq!(e.to_string(), "not valid gzip: unexpected end of file");
}

/// Regression (fuzz target `page_file`, fuzz/regressions/page_file/second-member-dropped): a file of
/// two gzip members read as its first member only, here no pages at all.
#[test]
fn every_gzip_member_is_read() {
    let two = [gzip(b""), gzip(b"x")].concat();
    assert_eq!(read(&two), Err(PageFileError::NotWholePages { len: 1 }));
    let bytes = pages(3);
    let file =
        [gzip(&bytes[..PAGE_SIZE]), gzip(&bytes[PAGE_SIZE..2 * PAGE_SIZE + 100]), gzip(&bytes[2 * PAGE_SIZE + 100..])]
            .concat();
    let p = read(&file).unwrap();
    assert_eq!((p.encoding, p.pages, p.fnv, &p.bytes[..]), (Encoding::Gzip, 3, fnv1a::fnv1a64(&bytes), &bytes[..]));
}

/// Regression (fuzz target `page_file`, fuzz/regressions/page_file/trailing-bytes-ignored): bytes after
/// the last member were ignored, so `gzip("") ++ "x"` was `Empty` and `gzip(page) ++ "junk"` one page.
#[test]
fn bytes_after_the_last_member_are_refused() {
    let empty_then_x = [gzip(b""), b"x".to_vec()].concat();
    assert!(!bad_gzip(&empty_then_x).is_empty());
    let page_then_junk = [gzip(&pages(1)), b"junk".to_vec()].concat();
    // Too short for a member header, then not one: the decoder says so in its words.
    assert_eq!(bad_gzip(&page_then_junk), "unexpected end of file");
    let zero_padded = [gzip(&pages(1)), vec![0; 512]].concat();
    assert_eq!(bad_gzip(&zero_padded), "invalid gzip header");
    let half_magic = [gzip(&pages(1)), vec![0x1f]].concat();
    assert!(!bad_gzip(&half_magic).is_empty());
}
