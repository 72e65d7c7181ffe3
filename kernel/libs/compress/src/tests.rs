//! Host tests: round trips over real and synthetic pages, the threshold contract, and corrupted input.

use super::*;

use std::panic::{AssertUnwindSafe, catch_unwind};

type Page = [u8; PAGE_SIZE];

const LZ4: Algorithm = Algorithm::Lz4;
const DEFLATE_1: Algorithm = Algorithm::Deflate { level: 1 };
const DEFLATE_6: Algorithm = Algorithm::Deflate { level: 6 };
const DEFLATE_10: Algorithm = Algorithm::Deflate { level: 10 };
const ALL: [Algorithm; 4] = [LZ4, DEFLATE_1, DEFLATE_6, DEFLATE_10];

use pagedata::sample::perl_pages;
use pagedata::{Rng, THREE_QUARTERS_FRESH};

fn random_page(seed: u64) -> Box<Page> {
    let mut page = Box::new([0; PAGE_SIZE]);
    pagedata::random_page(seed, &mut page);
    page
}

/// A page that compresses to roughly `fresh_percent` % (`pagedata::ratio_page`).
fn ratio_page(seed: u64, fresh_percent: usize) -> Box<Page> {
    let mut page = Box::new([0; PAGE_SIZE]);
    pagedata::ratio_page(seed, fresh_percent, &mut page);
    page
}

fn same_page(word: u64) -> Box<Page> {
    let mut page = Box::new([0; PAGE_SIZE]);
    fill_same(&mut page, word);
    page
}

/// Compress and decompress `page` with `c`, asserting a byte-for-byte round trip; the stored size.
fn round_trip(c: &mut Compressor, page: &Page, what: &str) -> usize {
    let alg = c.algorithm();
    let stored = c.compress(page, MAX_STORED).unwrap_or_else(|e| panic!("{what}, {alg:?}: {e:?}")).to_vec();
    assert!(stored.len() <= MAX_STORED);
    assert_eq!(stored[0], alg.id());
    let mut back = [0xa5; PAGE_SIZE];
    c.decompress(&stored, &mut back).unwrap_or_else(|e| panic!("{what}, {alg:?}: {e:?}"));
    assert!(back == *page, "{what}, {alg:?}: decompressed page differs");
    stored.len()
}

#[test]
fn algorithm_ids_names_and_levels() {
    assert_eq!((LZ4.id(), LZ4.name()), (1, "lz4"));
    assert_eq!((DEFLATE_6.id(), DEFLATE_6.name()), (2, "deflate"));
    assert_eq!(Algorithm::from_id(1, 0), Some(LZ4));
    assert_eq!(Algorithm::from_id(2, 6), Some(DEFLATE_6));
    assert_eq!(Algorithm::from_id(2, 0), None);
    assert_eq!(Algorithm::from_id(2, 11), None);
    assert_eq!(Algorithm::from_id(0, 1), None);
    assert_eq!(Algorithm::from_id(3, 1), None);
    for level in 1..=10 {
        let alg = Algorithm::Deflate { level };
        assert_eq!(Algorithm::from_id(alg.id(), level), Some(alg));
        assert_eq!(Compressor::new(alg).unwrap().algorithm(), alg);
    }
    for level in [0, 11, 255] {
        assert_eq!(Compressor::new(Algorithm::Deflate { level }).unwrap_err(), CompressError::BadLevel(level));
    }
    assert_eq!(Compressor::new(LZ4).unwrap().algorithm(), LZ4);
    assert!(format!("{:?}", Compressor::new(LZ4).unwrap()).contains("Lz4"));
}

#[test]
fn same_filled_detects_repeated_words_only() {
    for word in [0, u64::MAX, 0x0123_4567_89ab_cdef, 0xff, 1 << 63] {
        let page = same_page(word);
        assert_eq!(same_filled(&page), Some(word), "{word:#x}");
        // One changed byte anywhere (first word included) breaks it.
        for at in 0..PAGE_SIZE {
            let mut bad = page.clone();
            bad[at] ^= 0x10;
            assert_eq!(same_filled(&bad), None, "{word:#x}, byte {at}");
        }
    }
    // Little-endian word, byte-periodic pages.
    assert_eq!(same_filled(&[0x01; PAGE_SIZE]), Some(0x0101_0101_0101_0101));
    let mut page = [0; PAGE_SIZE];
    for (i, b) in page.iter_mut().enumerate() {
        *b = (i % 8) as u8;
    }
    assert_eq!(same_filled(&page), Some(0x0706_0504_0302_0100));
    let mut filled = [0xee; PAGE_SIZE];
    fill_same(&mut filled, 0x0706_0504_0302_0100);
    assert_eq!(filled, page);
    // A period of 16 bytes is not same-filled, nor is a random page.
    page[8..16].copy_from_slice(&[9; 8]);
    for at in (0..PAGE_SIZE).step_by(16) {
        page.copy_within(0..16, at);
    }
    assert_eq!(same_filled(&page), None);
    assert_eq!(same_filled(&random_page(1)), None);
}

#[test]
fn round_trip_synthetic_pages() {
    let mut pages: Vec<(String, Box<Page>)> = Vec::new();
    pages.push(("zero".into(), same_page(0)));
    for word in [u64::MAX, 0x0123_4567_89ab_cdef, 0xdead_beef] {
        pages.push((format!("same-filled {word:#x}"), same_page(word)));
    }
    for seed in 1..=3 {
        pages.push((format!("random {seed}"), random_page(seed)));
        pages.push((format!("75% {seed}"), ratio_page(seed, THREE_QUARTERS_FRESH)));
    }
    for alg in ALL {
        // One compressor for all pages: state left by one page must not leak into the next.
        let mut c = Compressor::new(alg).unwrap();
        for (what, page) in &pages {
            round_trip(&mut c, page, what);
        }
    }
}

/// Round trip every `step`th page of the perl sample and print its figures (the data README: 0.5%
/// same-filled, mean deflate-1 size 835 bytes, ratio 0.203).
fn perl_sample(alg: Algorithm, step: usize, max_ratio: f64) {
    let pages: Vec<&Page> = perl_pages().iter().step_by(step).collect();
    let mut c = Compressor::new(alg).unwrap();
    let (mut all, mut not_same, mut same) = (0, 0, 0);
    for (i, page) in pages.iter().enumerate() {
        let size = round_trip(&mut c, page, &format!("perl page {}", i * step));
        all += size;
        match same_filled(page) {
            Some(_) => same += 1,
            None => not_same += size,
        }
    }
    let mean = all as f64 / pages.len() as f64;
    let mean_not_same = not_same as f64 / (pages.len() - same) as f64;
    println!(
        "perl sample, {alg:?}: {} pages, {same} same-filled ({:.1}%); mean stored size {mean:.0} bytes, \
         ratio {:.3}; without same-filled pages {mean_not_same:.0} bytes, ratio {:.3}",
        pages.len(),
        same as f64 * 100.0 / pages.len() as f64,
        mean / PAGE_SIZE as f64,
        mean_not_same / PAGE_SIZE as f64,
    );
    // The README's figures, loosely: a sample that compressed much worse would mean a broken codec.
    if step == 1 {
        assert_eq!(same, 10, "same-filled pages in the sample");
    }
    assert!(mean / (PAGE_SIZE as f64) < max_ratio, "{alg:?}: mean stored size {mean}");
}

#[test]
fn round_trip_perl_sample_lz4() {
    perl_sample(LZ4, 1, 0.40);
}

#[test]
fn round_trip_perl_sample_deflate_1() {
    perl_sample(DEFLATE_1, 1, 0.25);
}

#[test]
fn round_trip_perl_sample_deflate_6() {
    perl_sample(DEFLATE_6, 1, 0.25);
}

/// Level 10 is miniz_oxide's slowest: every fourth page keeps the debug test run short.
#[test]
fn round_trip_perl_sample_deflate_10() {
    perl_sample(DEFLATE_10, 4, 0.25);
}

#[test]
fn ratio_pages_compress_to_about_three_quarters() {
    for alg in ALL {
        let mut c = Compressor::new(alg).unwrap();
        let total: usize = (0..16).map(|seed| round_trip(&mut c, &ratio_page(seed, THREE_QUARTERS_FRESH), "75%")).sum();
        let ratio = total as f64 / (16 * PAGE_SIZE) as f64;
        println!("75% pages, {alg:?}: ratio {ratio:.3}");
        assert!((0.70..=0.80).contains(&ratio), "{alg:?}: ratio {ratio}");
    }
}

#[test]
fn incompressible_pages_are_rejected_and_bounded() {
    for alg in ALL {
        let mut c = Compressor::new(alg).unwrap();
        for seed in 0..8 {
            let page = random_page(100 + seed);
            // With no limit: a random page grows a little, but never past MAX_STORED.
            let size = c.compress(&page, MAX_STORED).unwrap().len();
            assert!(size > PAGE_SIZE && size <= MAX_STORED, "{alg:?}: {size}");
            round_trip(&mut c, &page, "random");
            // zswap's usual limit, about a page, a page plus the header: all rejected with the true size.
            for threshold in [3 * PAGE_SIZE / 4, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + OVERHEAD, size - 1] {
                assert_eq!(c.compress(&page, threshold), Err(CompressError::Incompressible { size, threshold }));
            }
            assert_eq!(c.compress(&page, size).unwrap().len(), size);
        }
        // A threshold below the header rejects even a zero page; a rejection leaves the compressor usable.
        let zero = [0; PAGE_SIZE];
        assert!(matches!(c.compress(&zero, OVERHEAD - 1), Err(CompressError::Incompressible { .. })));
        round_trip(&mut c, &zero, "zero after rejection");
    }
}

#[test]
fn any_compressor_decodes_any_algorithm() {
    let page = ratio_page(7, 40);
    let stored: Vec<Vec<u8>> =
        ALL.iter().map(|&alg| Compressor::new(alg).unwrap().compress(&page, MAX_STORED).unwrap().to_vec()).collect();
    for alg in ALL {
        let mut c = Compressor::new(alg).unwrap();
        for s in &stored {
            let mut back = [0; PAGE_SIZE];
            c.decompress(s, &mut back).unwrap();
            assert!(back == *page);
        }
    }
}

#[test]
fn decompress_rejects_impossible_sizes() {
    let mut c = Compressor::new(LZ4).unwrap();
    let mut page = [0; PAGE_SIZE];
    for len in 0..OVERHEAD {
        assert_eq!(c.decompress(&[1; OVERHEAD][..len], &mut page), Err(DecompressError::Corrupt));
    }
    let mut long = c.compress(&ratio_page(3, 50), MAX_STORED).unwrap().to_vec();
    long.resize(MAX_STORED + 1, 0);
    assert_eq!(c.decompress(&long, &mut page), Err(DecompressError::Corrupt));
    // A header with an empty stream, and unknown ids.
    assert_eq!(c.decompress(&[1, 0, 0, 0, 0], &mut page), Err(DecompressError::Corrupt));
    assert_eq!(c.decompress(&[2, 0, 0, 0, 0], &mut page), Err(DecompressError::Corrupt));
    for id in [0, 3, 0x81, 0xff] {
        assert_eq!(c.decompress(&[id, 0, 0, 0, 0, 0], &mut page), Err(DecompressError::UnknownAlgorithm(id)));
    }
}

// The three corruption tests together feed at least 22,000 corrupted inputs (12,000 + 5,000 + 5,000).

/// Stored pages to corrupt: every kind of page, each algorithm, with the compressor that made them.
fn corruption_corpus() -> Vec<(Algorithm, Vec<u8>)> {
    let perl = perl_pages();
    let mut pages: Vec<Box<Page>> = vec![same_page(0), same_page(0x0123_4567_89ab_cdef), random_page(9)];
    pages.extend((0..2).map(|seed| ratio_page(seed, THREE_QUARTERS_FRESH)));
    pages.push(ratio_page(5, 20));
    // Spread over the sample: heap, stacks and data all look different.
    pages.extend((0..8).map(|i| Box::new(perl[i * pagedata::sample::PERL_PAGES / 8 + 3])));
    let mut corpus = Vec::new();
    for alg in [LZ4, DEFLATE_1, DEFLATE_6] {
        let mut c = Compressor::new(alg).unwrap();
        for page in &pages {
            corpus.push((alg, c.compress(page, MAX_STORED).unwrap().to_vec()));
        }
    }
    corpus
}

/// Decompress corrupted bytes: must be `Corrupt`, or `UnknownAlgorithm` when the id byte was hit, and
/// must not panic.
fn assert_rejected(c: &mut Compressor, good: &[u8], bad: &[u8], what: &dyn Fn() -> String) {
    let mut page = [0; PAGE_SIZE];
    let result = catch_unwind(AssertUnwindSafe(|| c.decompress(bad, &mut page)));
    match result {
        Err(_) => panic!("{}: decompress panicked", what()),
        Ok(Err(DecompressError::Corrupt)) => {}
        Ok(Err(DecompressError::UnknownAlgorithm(id))) if bad.first() == Some(&id) && good[0] != id => {}
        Ok(other) => panic!("{}: {other:?}", what()),
    }
}

#[test]
fn corrupt_single_bit_flips_are_detected() {
    let mut rng = Rng::new(0xb17f_11b5);
    let mut c = Compressor::new(LZ4).unwrap();
    let mut count = 0;
    for (n, (alg, good)) in corruption_corpus().iter().enumerate() {
        // Short frames: every bit. Long ones: every header bit, the last 8 bytes, and 200 random bits.
        let bits: Vec<usize> = if good.len() <= 64 {
            (0..good.len() * 8).collect()
        } else {
            let tail = (good.len() - 8) * 8;
            (0..OVERHEAD * 8).chain(tail..good.len() * 8).chain((0..200).map(|_| rng.below(good.len() * 8))).collect()
        };
        let mut bad = good.clone();
        for bit in bits {
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_rejected(&mut c, good, &bad, &|| format!("frame {n} ({alg:?}, {} bytes), bit {bit}", good.len()));
            bad[bit / 8] ^= 1 << (bit % 8);
            count += 1;
        }
    }
    println!("single-bit flips: {count} corrupted inputs rejected");
    assert!(count >= 12_000, "{count}");
}

#[test]
fn corrupt_garbage_is_detected() {
    let mut rng = Rng::new(0x6a7b_a6e5);
    let mut c = Compressor::new(DEFLATE_1).unwrap();
    let mut count = 0;
    for (n, (alg, good)) in corruption_corpus().iter().enumerate() {
        for round in 0..150 {
            let mut bad = good.clone();
            if round % 2 == 0 {
                // A run of 1..=16 random bytes at a random place.
                let len = 1 + rng.below(16.min(bad.len()));
                let at = rng.below(bad.len() - len + 1);
                rng.fill(&mut bad[at..at + len]);
            } else {
                // 2..=8 scattered random bytes.
                for _ in 0..2 + rng.below(7) {
                    let at = rng.below(bad.len());
                    bad[at] = rng.next_u64() as u8;
                }
            }
            if bad == *good {
                continue;
            }
            assert_rejected(&mut c, good, &bad, &|| format!("frame {n} ({alg:?}), garbage round {round}"));
            count += 1;
        }
    }
    println!("random garbage: {count} corrupted inputs rejected");
    assert!(count >= 5_000, "{count}");
}

#[test]
fn corrupt_truncation_and_extension_are_detected() {
    let mut rng = Rng::new(0x7e0c_a7ed);
    let mut c = Compressor::new(DEFLATE_6).unwrap();
    let mut count = 0;
    for (n, (alg, good)) in corruption_corpus().iter().enumerate() {
        // Truncation: every length for short frames, the last 64 and 100 random ones for long frames.
        let lens: Vec<usize> = if good.len() <= 200 {
            (0..good.len()).collect()
        } else {
            (good.len() - 64..good.len()).chain((0..100).map(|_| rng.below(good.len()))).collect()
        };
        for len in lens {
            assert_rejected(&mut c, good, &good[..len], &|| format!("frame {n} ({alg:?}), cut to {len}"));
            count += 1;
        }
        // Extension: zero bytes (an empty LZ4 sequence decodes to nothing), random bytes, a second copy.
        for extra in 1..=32 {
            let mut bad = good.clone();
            bad.resize(good.len() + extra, 0);
            assert_rejected(&mut c, good, &bad, &|| format!("frame {n} ({alg:?}), {extra} zeros added"));
            rng.fill(&mut bad[good.len()..]);
            assert_rejected(&mut c, good, &bad, &|| format!("frame {n} ({alg:?}), {extra} bytes added"));
            count += 2;
        }
        let mut twice = good.clone();
        twice.extend_from_slice(&good[OVERHEAD..]);
        assert_rejected(&mut c, good, &twice, &|| format!("frame {n} ({alg:?}), stream twice"));
        count += 1;
    }
    println!("truncation and extension: {count} corrupted inputs rejected");
    assert!(count >= 5_000, "{count}");
}

#[test]
fn max_stored_is_lz4s_worst_case_plus_the_frame() {
    assert_eq!(MAX_STORED, lz4_flex::block::get_maximum_output_size(PAGE_SIZE) + OVERHEAD);
    assert_eq!(OVERHEAD, 5);
}

#[test]
fn page_check_is_adler32_of_the_page() {
    // Adler-32 of n zero bytes: a = 1, b = n.
    assert_eq!(page_check(&[0; PAGE_SIZE]), (4096 << 16) | 1);
    let mut p = [0u8; PAGE_SIZE];
    p[0] = 1;
    // a = 1 + 1 = 2 from the first byte on, and b sums a after every byte: 4096 × 2.
    assert_eq!(page_check(&p), (8192 << 16) | 2);
}

#[test]
fn the_length_is_checked_before_the_algorithm() {
    let mut c = Compressor::new(Algorithm::Lz4).unwrap();
    let mut page = [0u8; PAGE_SIZE];
    let unknown = |len: usize| {
        let mut v = vec![0u8; len];
        v[0] = 99;
        v
    };
    assert_eq!(c.decompress(&unknown(OVERHEAD - 1), &mut page), Err(DecompressError::Corrupt));
    assert_eq!(c.decompress(&unknown(OVERHEAD), &mut page), Err(DecompressError::UnknownAlgorithm(99)));
    assert_eq!(c.decompress(&unknown(MAX_STORED), &mut page), Err(DecompressError::UnknownAlgorithm(99)));
    assert_eq!(c.decompress(&unknown(MAX_STORED + 1), &mut page), Err(DecompressError::Corrupt));
}

#[test]
fn a_deflate_stream_with_bytes_left_over_is_corrupt_even_with_a_matching_check() {
    let mut c = Compressor::new(Algorithm::Deflate { level: 1 }).unwrap();
    let mut page = [0u8; PAGE_SIZE];
    for (i, b) in page.iter_mut().enumerate() {
        *b = (i % 251) as u8 ^ (i / 512) as u8;
    }
    let mut stored = c.compress(&page, PAGE_SIZE).unwrap().to_vec();
    let mut out = [0u8; PAGE_SIZE];
    c.decompress(&stored, &mut out).unwrap();
    stored.push(0);
    let sum = check(stored[0], &stored[OVERHEAD..], &page);
    stored[CHECK].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(c.decompress(&stored, &mut out), Err(DecompressError::Corrupt));
}
