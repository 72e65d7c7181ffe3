//! The seed corpora: a handful of small real inputs per target, made by the crates themselves.
//!
//! libFuzzer starts from `fuzz/corpus/TARGET/` and mutates what it finds there; a valid image, a real
//! stored page or a real option string lets it start past the first checks instead of rediscovering the
//! magic number. The files are committed, and [`seeds`] is what made them: the test below fails when a
//! file and its maker disagree (the format changed: regenerate with
//! `ZKERNEL_FUZZ_WRITE_SEEDS=1 cargo test --manifest-path fuzz/Cargo.toml`). libFuzzer adds what it
//! finds to the same directory during a run; only the files named here are checked and committed.
//!
//! | target | seeds |
//! |---|---|
//! | `fsimage_parse` | flag byte + images from [`fsimage::pack`]: three files (fsimage's worked example, shortened), none, one with spare pages |
//! | `kopts_parse` | option strings from kopts's docs and tests, one per kind of error, and every option written out |
//! | `compress_decode` | stored bytes from [`compress::Compressor::compress`] (LZ4 and deflate, zero and text pages), one damaged, and two round-trip inputs |
//! | `pool_forged_handles`, `tmem_model` | xorshift bytes of a few lengths: `arbitrary` reads any bytes as an operation sequence |
//! | `page_file` | mode byte + files: one raw page, a short and an empty file, gzip of three pages (whole, cut short, bad CRC, two members); pages for the target to gzip in one member, two, and with a tail |

use std::io::Write;

use compress::{Algorithm, Compressor, MAX_STORED, PAGE_SIZE};

/// Every fuzz target (`cargo xtask fuzz` reads them from this crate's `[[bin]]`s; the seeds test uses this list).
pub const TARGETS: [&str; 6] =
    ["fsimage_parse", "kopts_parse", "compress_decode", "pool_forged_handles", "tmem_model", "page_file"];

/// A page of English-like text (compresses to about half with either algorithm).
fn text_page() -> Box<[u8; PAGE_SIZE]> {
    let line = b"tmem keeps clean and dirty pages compressed, keyed by pool, object and index.\n";
    let mut page = Box::new([0; PAGE_SIZE]);
    for (i, b) in page.iter_mut().enumerate() {
        *b = line[i % line.len()] ^ (i / 997) as u8;
    }
    page
}

fn xorshift_bytes(seed: u32, len: usize) -> Vec<u8> {
    crate::make_page(seed, len.min(PAGE_SIZE) as u16, 0)[..len].to_vec()
}

fn stored(alg: Algorithm, page: &[u8; PAGE_SIZE]) -> Vec<u8> {
    let mut c = Compressor::new(alg).expect("a valid algorithm");
    c.compress(page, MAX_STORED).expect("MAX_STORED never refuses").to_vec()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(bytes).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

/// `head` then `bytes`.
fn with_head(head: &[u8], bytes: &[u8]) -> Vec<u8> {
    [head, bytes].concat()
}

/// The seeds of `target` as (file name, bytes); empty for an unknown target.
pub fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "fsimage_parse" => {
            let readme: Vec<u8> = (0..5000u32).map(|i| b"zkernel README\n"[i as usize % 15]).collect();
            let swap = vec![b's'; 4096];
            let three = fsimage::pack(&[("README.md", &readme[..]), ("docs/swap.md", &swap[..]), ("empty", &[][..])]);
            let none = fsimage::pack::<&str, &[u8]>(&[]);
            let one = fsimage::pack(&[("a", &b"one small file"[..])]);
            let flagged = |flags: u8, image: Result<Vec<u8>, fsimage::PackError>| {
                let mut v = vec![flags];
                v.extend(image.expect("the seed images pack"));
                v
            };
            let mut bad_magic = flagged(0x01, three.clone());
            bad_magic[1] ^= 0xff;
            vec![
                ("three-files.img", flagged(0x01, three)),
                ("no-files.img", flagged(0x00, none)),
                ("one-file-spare-pages.img", flagged(0x21, one)),
                ("bad-magic.img", bad_magic),
            ]
        }
        "kopts_parse" => {
            let all = kopts::Settings::parse("").expect("the defaults parse");
            let every: Vec<String> = kopts::OPTIONS
                .iter()
                .filter_map(|o| match all.get(o.key) {
                    Some(kopts::Value::Unset) | None => None,
                    Some(v) => Some(format!("{}={v}", o.key)),
                })
                .collect();
            let strings: [(&'static str, String); 8] = [
                ("empty.txt", String::new()),
                ("header-example.txt", "loglevel=debug memmap=full".into()),
                ("swap.txt", "swap_mem=512 swap_factor=2".into()),
                ("three-errors.txt", "swap_mem=abc deflate_level=0 frob=1".into()),
                ("derived-overflow.txt", "swap_mem=1048576 swap_factor=65".into()),
                ("conflict.txt", "workload=all swap_pattern=all".into()),
                ("hex-and-nul.txt", "ramdisk_fnv=0123456789abcdef\0tmem=zbud\n".into()),
                ("every-option.txt", every.join(" ")),
            ];
            strings.into_iter().map(|(name, s)| (name, s.into_bytes())).collect()
        }
        "compress_decode" => {
            let zero = Box::new([0u8; PAGE_SIZE]);
            let text = text_page();
            let mut damaged = stored(Algorithm::Lz4, &text);
            let mid = damaged.len() / 2;
            damaged[mid] ^= 0x10;
            let round_trip = |selector: u8| {
                let mut v = vec![selector];
                v.extend_from_slice(&text[..512]);
                v
            };
            vec![
                ("zero-page.lz4", stored(Algorithm::Lz4, &zero)),
                ("zero-page.deflate1", stored(Algorithm::Deflate { level: 1 }, &zero)),
                ("text-page.lz4", stored(Algorithm::Lz4, &text)),
                ("text-page.deflate6", stored(Algorithm::Deflate { level: 6 }, &text)),
                ("text-page-damaged.lz4", damaged),
                ("round-trip-lz4.bin", round_trip(0)),
                ("round-trip-deflate5.bin", round_trip(5)),
            ]
        }
        "pool_forged_handles" | "tmem_model" => vec![
            ("ops-64.bin", xorshift_bytes(1, 64)),
            ("ops-256.bin", xorshift_bytes(2, 256)),
            ("ops-1024.bin", xorshift_bytes(3, 1024)),
            ("ops-4096.bin", xorshift_bytes(4, 4096)),
        ],
        "page_file" => {
            let text = text_page();
            let three: Vec<u8> = (0..3).flat_map(|i| crate::make_page(i + 1, 600, b'p').to_vec()).collect();
            let gz = gzip(&three);
            let mut bad_crc = gz.clone();
            let crc_at = bad_crc.len() - 8;
            bad_crc[crc_at] ^= 1;
            let two_members = [gzip(&three[..PAGE_SIZE]), gzip(&three[PAGE_SIZE..])].concat();
            vec![
                ("raw-one-page.bin", with_head(&[0], &text[..])),
                ("raw-short.bin", with_head(&[0], &text[..100])),
                ("empty.bin", vec![0]),
                ("gzip-three-pages.bin", with_head(&[0], &gz)),
                ("gzip-cut-short.bin", with_head(&[0], &gz[..gz.len() / 2])),
                ("gzip-bad-crc.bin", with_head(&[0], &bad_crc)),
                ("gzip-two-members.bin", with_head(&[0], &two_members)),
                ("pack-one-page.bin", with_head(&[1 | 6 << 2], &text[..])),
                ("pack-two-members.bin", with_head(&[2 | 1 << 2, 128], &three[..2 * PAGE_SIZE])),
                ("pack-with-tail.bin", with_head(&[3 | 1 << 2, 4], &[&text[..], b"junk"].concat())),
            ]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn corpus_dir(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
    }

    /// The committed seeds are exactly what [`seeds`] makes (or, with `ZKERNEL_FUZZ_WRITE_SEEDS=1`,
    /// become it).
    #[test]
    fn committed_seeds_are_current() {
        let write = std::env::var_os("ZKERNEL_FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1");
        for target in TARGETS {
            let dir = corpus_dir(target);
            let made = seeds(target);
            assert!(!made.is_empty() && made.len() <= 20, "{target}: {} seeds", made.len());
            assert!(made.iter().map(|(_, b)| b.len()).sum::<usize>() <= 200 * 1024, "{target}: seeds too large");
            for (name, bytes) in made {
                let path = dir.join(name);
                if write {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, &bytes).unwrap();
                }
                let on_disk = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(
                    on_disk == bytes,
                    "{} differs from its maker (ZKERNEL_FUZZ_WRITE_SEEDS=1 rewrites it)",
                    path.display()
                );
            }
        }
    }

    /// [`TARGETS`] names exactly the `[[bin]]`s of Cargo.toml (what `cargo xtask fuzz` runs), so no
    /// target runs without seeds.
    #[test]
    fn targets_are_the_binaries() {
        let manifest = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
        let mut bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| bin.lines().find_map(|l| l.trim().strip_prefix("name = ")))
            .map(|name| name.trim_matches('"'))
            .collect();
        let mut targets = TARGETS.to_vec();
        bins.sort_unstable();
        targets.sort_unstable();
        assert_eq!(bins, targets);
    }

    #[test]
    fn seed_images_parse_and_seed_pages_decode() {
        for (name, bytes) in seeds("fsimage_parse") {
            let parsed = fsimage::Image::parse(&bytes[1..]);
            assert_eq!(parsed.is_ok(), name != "bad-magic.img", "{name}: {parsed:?}");
        }
        let mut c = Compressor::new(Algorithm::Lz4).unwrap();
        let mut page = [0u8; PAGE_SIZE];
        for (name, bytes) in seeds("compress_decode") {
            let r = c.decompress(&bytes, &mut page);
            let decodes = !name.contains("damaged") && !name.starts_with("round-trip");
            assert_eq!(r.is_ok(), decodes, "{name}: {r:?}");
        }
        for (name, bytes) in seeds("page_file") {
            if bytes[0] == 0 {
                let r = pagefile::read(&bytes[1..]);
                let reads = matches!(name, "raw-one-page.bin" | "gzip-three-pages.bin" | "gzip-two-members.bin");
                assert_eq!(r.is_ok(), reads, "{name}: {r:?}");
            }
        }
        assert_eq!(seeds("nonexistent"), Vec::<(&str, Vec<u8>)>::new());
    }
}
