//! Host tests of the image format: pack a sample directory, parse it back, and corrupt the image one
//! field at a time to see each refusal's typed error.

use super::*;

fn sample() -> Vec<(String, Vec<u8>)> {
    vec![
        ("README.md".into(), (0..11359u32).map(|i| (i % 251) as u8 + 1).collect()),
        ("docs/swap.md".into(), vec![b'x'; 8192]),
        ("empty".into(), Vec::new()),
        ("kernel/src/fs.rs".into(), b"//! one line".to_vec()),
    ]
}

fn packed() -> Vec<u8> {
    pack(&sample()).unwrap()
}

fn disk_pages(image: &[u8]) -> u64 {
    (image.len() / PAGE_SIZE) as u64
}

fn entry_at(i: usize) -> usize {
    PAGE_SIZE + i * ENTRY_SIZE
}

fn set_u64(image: &mut [u8], at: usize, v: u64) {
    put_u64(image, at, v);
    seal(image);
}

#[test]
fn worked_example_layout() {
    let image = packed();
    let img = Image::parse(&image).unwrap();
    assert_eq!(img.header.file_count, 4);
    assert_eq!((img.header.table_pages, img.header.data_start), (1, 2));
    let ranges: Vec<_> = img.files.iter().map(FileEntry::page_range).collect();
    assert_eq!(ranges, [2..5, 5..7, 7..7, 7..8]);
    assert_eq!(img.header.total_pages, 8);
    assert_eq!(image.len(), 8 * PAGE_SIZE);
    assert_eq!(&image[..8], b"ZKFILES1");
    let readme = &img.files[0];
    assert_eq!((readme.bytes_in_page(0), readme.bytes_in_page(2), readme.bytes_in_page(3)), (4096, 3167, 0));
}

#[test]
fn round_trip() {
    let files = sample();
    let image = pack(&files).unwrap();
    let img = Image::parse(&image).unwrap();
    assert_eq!(img.files.len(), files.len());
    for (i, ((name, data), e)) in files.iter().zip(&img.files).enumerate() {
        assert_eq!(e.name(), name);
        assert_eq!(e.len, data.len() as u64);
        assert_eq!(e.fnv, fnv1a64(data));
        assert_eq!(img.data(&image, e), &data[..]);
        assert_eq!(img.file(name).map(|(ino, _)| ino), Some(i as u32));
        // The rest of the last page is zero.
        let end = e.page_range().end as usize * PAGE_SIZE;
        let from = e.start_page as usize * PAGE_SIZE + data.len();
        assert!(image[from..end].iter().all(|&b| b == 0), "{name}: padding is zero");
    }
    assert!(img.file("nope").is_none());
    // The header encodes back to page 0.
    assert_eq!(img.header.encode()[..], image[..PAGE_SIZE]);
}

#[test]
fn many_files_take_several_table_pages() {
    let files: Vec<(String, Vec<u8>)> = (0..70).map(|i| (format!("f{i:03}"), vec![i as u8; i * 100])).collect();
    let image = pack(&files).unwrap();
    let img = Image::parse(&image).unwrap();
    assert_eq!((img.header.table_pages, img.header.data_start), (3, 4));
    for ((name, data), e) in files.iter().zip(&img.files) {
        assert_eq!((e.name(), img.data(&image, e)), (name.as_str(), &data[..]));
    }
}

#[test]
fn an_empty_image_is_valid() {
    let image = pack::<&str, &[u8]>(&[]).unwrap();
    let img = Image::parse(&image).unwrap();
    assert_eq!((img.header.table_pages, img.header.total_pages, img.files.len()), (0, 1, 0));
}

#[test]
fn pack_refuses_bad_names() {
    let d: &[u8] = b"x";
    assert_eq!(pack(&[("a", d), ("", d)]), Err(PackError::EmptyName { index: 1 }));
    let long = "n".repeat(NAME_LEN + 1);
    assert_eq!(pack(&[(long.as_str(), d)]), Err(PackError::NameTooLong { index: 0, len: NAME_LEN + 1 }));
    assert!(pack(&[("n".repeat(NAME_LEN).as_str(), d)]).is_ok(), "a name of exactly NAME_LEN bytes fits");
    assert_eq!(pack(&[("a\0b", d)]), Err(PackError::NameHasNul { index: 0 }));
    assert_eq!(pack(&[("a", d), ("b", d), ("a", d)]), Err(PackError::DuplicateName { index: 2, first: 0 }));
    let too_many: Vec<(String, &[u8])> = (0..=MAX_FILES).map(|i| (format!("{i}"), &[][..])).collect();
    assert!(matches!(pack(&too_many), Err(PackError::TooManyFiles { .. })));
}

#[test]
fn a_full_length_name_round_trips() {
    let name = "é".repeat(NAME_LEN / 2);
    let image = pack(&[(name.as_str(), b"abc")]).unwrap();
    assert_eq!(Image::parse(&image).unwrap().files[0].name(), name);
}

#[test]
fn header_corruption_is_refused() {
    let good = packed();
    let pages = disk_pages(&good);
    let parse = |img: &[u8], pages| Image::parse_header(img[..PAGE_SIZE].try_into().unwrap(), pages);

    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(parse(&bad, pages), Err(ImageError::BadMagic { found: *b"XKFILES1" }));

    let mut bad = good.clone();
    bad[header_offset::VERSION] = 2;
    assert_eq!(parse(&bad, pages), Err(ImageError::BadVersion { found: 2 }));

    let mut bad = good.clone();
    bad[header_offset::TOTAL_PAGES] ^= 1;
    assert!(matches!(parse(&bad, pages), Err(ImageError::HeaderChecksum { .. })));

    let mut bad = good.clone();
    put_u32(&mut bad, header_offset::ENTRY_SIZE, 64);
    seal(&mut bad);
    assert_eq!(parse(&bad, pages), Err(ImageError::BadEntrySize { found: 64 }));

    let mut bad = good.clone();
    put_u32(&mut bad, header_offset::FILE_COUNT, MAX_FILES + 1);
    seal(&mut bad);
    assert_eq!(parse(&bad, pages), Err(ImageError::TooManyFiles { count: MAX_FILES + 1, max: MAX_FILES }));

    // A count that fits but disagrees with the table's size.
    let mut bad = good.clone();
    put_u32(&mut bad, header_offset::FILE_COUNT, 40);
    seal(&mut bad);
    assert_eq!(
        parse(&bad, pages),
        Err(ImageError::BadLayout { field: "the table's page count", found: 1, expected: 2 })
    );

    let mut bad = good.clone();
    set_u64(&mut bad, header_offset::DATA_START, 5);
    assert!(matches!(parse(&bad, pages), Err(ImageError::BadLayout { field: "the data start page", .. })));

    let mut bad = good.clone();
    set_u64(&mut bad, header_offset::TOTAL_PAGES, 1);
    assert!(matches!(parse(&bad, pages), Err(ImageError::BadLayout { field: "the total page count", .. })));

    // The disk is shorter than the image.
    assert_eq!(parse(&good, pages - 1), Err(ImageError::ImageBeyondDisk { total_pages: pages, disk_pages: pages - 1 }));
    assert_eq!(Image::parse(&good[..100]), Err(ImageError::NoHeader { disk_pages: 0 }));
    assert!(parse(&good, pages).is_ok());
}

/// Parse `image` on a disk of its own size.
fn parse(image: &[u8]) -> Result<Image, ImageError> {
    Image::parse(image)
}

#[test]
fn table_corruption_is_refused() {
    let good = packed();
    let pages = disk_pages(&good);

    // Truncated: fewer bytes than the header's table pages.
    let header = Image::parse_header(good[..PAGE_SIZE].try_into().unwrap(), pages).unwrap();
    assert_eq!(
        Image::parse_table(&header, &good[PAGE_SIZE..PAGE_SIZE + 100], pages),
        Err(ImageError::TruncatedTable { have: 100, need: 4096 })
    );

    let mut bad = good.clone();
    bad[entry_at(1) + 3] ^= 0x20;
    assert!(matches!(parse(&bad), Err(ImageError::TableChecksum { .. })));

    let mut bad = good.clone();
    bad[entry_at(1)..entry_at(1) + NAME_LEN].fill(0);
    seal(&mut bad);
    assert_eq!(parse(&bad), Err(ImageError::EmptyName { index: 1 }));

    let mut bad = good.clone();
    bad[entry_at(0) + 1] = 0xff;
    seal(&mut bad);
    assert!(matches!(parse(&bad), Err(ImageError::BadName { index: 0, why: "not UTF-8", .. })));

    let mut bad = good.clone();
    bad[entry_at(0) + 50] = b'z';
    seal(&mut bad);
    assert!(matches!(parse(&bad), Err(ImageError::BadName { index: 0, why: "bytes after its NUL padding", .. })));

    let mut bad = good.clone();
    bad.copy_within(entry_at(0)..entry_at(0) + NAME_LEN, entry_at(3));
    seal(&mut bad);
    match parse(&bad) {
        Err(ImageError::DuplicateName { index: 3, first: 0, name }) => assert_eq!(name.to_string(), "README.md"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_ranges_are_checked() {
    let good = packed();
    let pages = disk_pages(&good);

    // Beyond the disk.
    let mut bad = good.clone();
    set_u64(&mut bad, entry_at(1) + entry_offset::START_PAGE, 900);
    let err = parse(&bad).unwrap_err();
    assert!(matches!(err, ImageError::FileBeyondDisk { index: 1, start: 900, end: 902, disk_pages: 8, .. }));
    assert_eq!(err.to_string(), "file 1 (docs/swap.md): pages 900..902 beyond the disk's 8 pages");

    // A length that overflows the page arithmetic.
    let mut bad = good.clone();
    set_u64(&mut bad, entry_at(1) + entry_offset::START_PAGE, u64::MAX - 1);
    assert!(matches!(parse(&bad), Err(ImageError::FileBeyondDisk { end: u64::MAX, .. })));
    let mut bad = good.clone();
    set_u64(&mut bad, entry_at(0) + entry_offset::LENGTH, u64::MAX);
    assert!(matches!(parse(&bad), Err(ImageError::FileBeyondDisk { index: 0, .. })));

    // On the disk but in the header or table, or past the image's end on a larger disk.
    let mut bad = good.clone();
    set_u64(&mut bad, entry_at(2) + entry_offset::START_PAGE, 1);
    assert!(matches!(parse(&bad), Err(ImageError::FileOutsideData { index: 2, start: 1, end: 1, .. })));
    let mut bigger = good.clone();
    bigger.resize(good.len() + 4 * PAGE_SIZE, 0);
    set_u64(&mut bigger, entry_at(3) + entry_offset::START_PAGE, 9);
    assert!(matches!(parse(&bigger), Err(ImageError::FileOutsideData { index: 3, start: 9, end: 10, .. })));
    assert_eq!(pages, 8);

    // Overlap: docs/swap.md moved onto README.md's last page.
    let mut bad = good.clone();
    set_u64(&mut bad, entry_at(1) + entry_offset::START_PAGE, 4);
    let err = parse(&bad).unwrap_err();
    assert!(matches!(err, ImageError::Overlap { first: 0, second: 1, page: 4, .. }), "{err:?}");
    assert_eq!(err.to_string(), "files 0 (README.md) and 1 (docs/swap.md) share page 4");

    // An empty file may sit anywhere in the data area, even inside another file's pages.
    let mut ok = good.clone();
    set_u64(&mut ok, entry_at(2) + entry_offset::START_PAGE, 3);
    assert!(parse(&ok).is_ok());
}

#[test]
fn messages_are_clear() {
    let e = ImageError::BadMagic { found: *b"\0\0\0\0ELF\x7f" };
    assert_eq!(e.to_string(), r#"bad magic "\x00\x00\x00\x00ELF\x7f" (want "ZKFILES1"): not a file image"#);
    let e = ImageError::TableChecksum { stored: 1, computed: 2 };
    assert_eq!(e.to_string(), "file table checksum 0x0000000000000001 stored, 0x0000000000000002 computed");
    let name = ErrorName::of(&FileName::from_field(b"a\xffb"));
    assert_eq!(name.to_string(), "a\u{fffd}b");
    let long = "é".repeat(30) + "/kernel/libs/fsimage/src/lib.rs";
    let name = ErrorName::of(&FileName::from_field(long.as_bytes()));
    assert_eq!(name.to_string(), "…éééé/kernel/libs/fsimage/src/lib.rs", "cut at a character");
    assert_eq!(PackError::NameTooLong { index: 2, len: 200 }.to_string(), "file 2: name of 200 bytes, at most 104");
}
