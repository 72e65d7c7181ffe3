//! Page compression: one 4 KiB page in, a framed and checksummed byte string out, and back.
//!
//! # Why
//!
//! zswap and tmem keep evicted pages in RAM, compressed: a page that shrinks to 1 KiB frees three
//! quarters of a frame. Both layers need the same few things from a compressor — compress one page,
//! say when it does not shrink enough to be worth storing, and give the exact page back later — and
//! they need them on the reclaim path, where allocating memory is exactly what we are short of. This
//! crate wraps two real algorithms behind that one API:
//!
//! - **LZ4** (`lz4_flex`, block format): fast, modest ratio; one of zswap's usual compressors.
//! - **deflate** (`miniz_oxide`, raw deflate, levels 1..=10): slower, better ratio.
//!
//! A [`Compressor`] owns every buffer it needs (the algorithm's state, the output buffer), allocated
//! once by [`Compressor::new`]; [`Compressor::compress`] and [`Compressor::decompress`] allocate
//! nothing. The kernel keeps one per CPU, as Linux keeps one `crypto_acomp` context per CPU.
//! It is portable (`no_std`, no `unsafe`) so the host tests can throw corrupted input at it.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | page | the [`PAGE_SIZE`] bytes being stored |
//! | stream | what the algorithm itself produced: an LZ4 block or a raw deflate stream (no zlib wrapper) |
//! | stored bytes | header + stream: what [`Compressor::compress`] returns and the pool keeps |
//! | threshold | the largest stored size the caller accepts; above it compression "failed" ([`CompressError::Incompressible`]) |
//! | same-filled page | a page that is one 8-byte word repeated ([`same_filled`]); stored as the word, never compressed |
//!
//! # Layout of the stored bytes
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | algorithm id: 1 = LZ4, 2 = deflate ([`Algorithm::id`]) |
//! | 1 | 4 | check: Adler-32, little-endian, over byte 0, then the stream, then the 4096 bytes of the page |
//! | 5 | n | stream |
//!
//! So [`OVERHEAD`] is 5 bytes, under 1% of the mean stored size on real pages. Why these fields:
//!
//! - The **id** makes stored bytes self-describing: any compressor decodes either algorithm, so a pool
//!   survives a change of algorithm (zswap lets the administrator switch compressor at run time and keeps
//!   old entries with the old one). The deflate *level* is not stored: inflate does not need it.
//! - The **check** covers the stream *and* the page it decodes to. The decoders themselves notice little:
//!   of the single-bit flips of an LZ4 or deflate stream of a real page (the test sample), 30–70% still
//!   decode to a page of the right size, only wrong — hence a check. Over the page alone, damage that
//!   decodes to the *same* page would pass (up to 5% of flips: an LZ4 match offset that lands on equal
//!   bytes, deflate's padding bits or an unused Huffman code length); that data is right, but the
//!   stored bytes are not and the caller should hear of it. Over the stream alone, a codec bug would hand back wrong data
//!   unnoticed. Over both, any single changed byte is caught for certain (Adler-32 misses no
//!   single-byte change), and other damage only if it decodes cleanly *and* collides in 32 bits.
//!   Adler-32 rather than CRC-32: the crate is already in the tree (miniz_oxide's own checksum), needs
//!   no table, and over ≥ 4 KiB its sums wrap, out of its weak short-input regime.
//! - No **length** field: the stored size is the pool object's size, which the caller keeps anyway; the
//!   decoded size must be exactly [`PAGE_SIZE`], and deflate must consume the whole stream (inflate
//!   stops at the final block and would ignore bytes after it).
//!
//! # Worked example
//!
//! A zero page is caught by [`same_filled`] first, but compressed anyway it gives, with LZ4, 32 stored
//! bytes (ratio 0.008):
//!
//! ```text
//! 01              id: LZ4
//! 68 10 57 8c     check, Adler-32 0x8c57_1068
//! 1f              token: 1 literal, then a match of 15 + 4 bytes or more
//! 00              the literal
//! 01 00           match offset 1 (little-endian)
//! ff (x15) f5     more match length: 15 * 255 + 245, so 4089 bytes copied from 1 byte back
//! 60              token: the last sequence, 6 literals (an LZ4 block always ends with literals)
//! 00 (x6)         the literals
//! ```
//!
//! 1 + 4089 + 6 = 4096 bytes. Deflate stores the same page in 39 bytes at level 1 and 25 at level 6. A
//! random page does not shrink: LZ4 makes 4119 stored bytes, deflate 4106 (one stored block); both are
//! above any useful threshold, and both under [`MAX_STORED`] (4530).
//!
//! # Contracts
//!
//! | call | gives | rule |
//! |---|---|---|
//! | [`Compressor::new`] | a compressor with all its buffers | the only call that allocates; `Err(BadLevel)` for deflate levels outside 1..=10 |
//! | [`Compressor::compress`] | the stored bytes, borrowed from the compressor | valid until the next call; the caller copies them into its pool object |
//! | | `Err(Incompressible { size, threshold })` | stored size would exceed `threshold`: the caller stores the page whole or rejects it (zswap's `reject_compress_poor`) |
//! | | never more than [`MAX_STORED`] bytes | so `threshold >= MAX_STORED` never gets `Incompressible` |
//! | [`Compressor::decompress`] | `Ok(())` only if the page is exactly the one compressed | any damage (bit flips, truncation, extension, a wrong algorithm byte) is `Err(Corrupt)` or `Err(UnknownAlgorithm)`, never a panic; on `Err` the page holds garbage |
//! | [`same_filled`] / [`fill_same`] | the repeated word, and back | check before compressing: zswap stores such pages as one word and no pool object |
//!
//! Storing a page "whole" is the caller's business, not a frame kind: on `Incompressible` it copies the
//! 4096 raw bytes into a [`PAGE_SIZE`] object, or rejects the page. With `threshold < PAGE_SIZE`
//! every frame is shorter than a page, so the object's size alone tells raw (`== PAGE_SIZE`) from
//! compressed (`< PAGE_SIZE`), with no flag. A raw page needs no header and no check: nothing decodes it.
//!
//! # Costs
//!
//! Per compressor, on the heap, allocated by [`Compressor::new`]: the [`MAX_STORED`]-byte output buffer
//! and inflate's state (10 KiB) always, plus LZ4's hash table (16 KiB) or miniz_oxide's deflate state
//! (about 310 KiB: a 64 KiB LZ code buffer, an 85 KiB output buffer and 160 KiB of dictionary and hash
//! chains, all sized for streams far longer than a page). Every deflate compression starts with
//! miniz_oxide's `reset()`, which rewrites all of that state: about 14 µs a page optimised on the
//! development machine, a third of level 1's time.
//!
//! Stack, measured on the host by running the calls on threads with small stacks:
//!
//! | call | optimised (`opt-level` ≥ 1) | unoptimised dependencies |
//! |---|---|---|
//! | `compress` + `decompress`, either algorithm | < 16 KiB | LZ4 ≈ 50 KiB, deflate ≈ 150 KiB |
//! | `Compressor::new` for deflate | ≈ 80 KiB (miniz_oxide builds its 64 KiB state on the stack) | ≈ 330 KiB |
//!
//! Kernel stacks are 128 KiB, so a kernel using deflate needs this crate, `miniz_oxide` and `lz4_flex`
//! optimised in its debug builds too, and creates its compressors early, on a stack with room to spare.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use core::fmt;

use miniz_oxide::deflate::core::{self as deflate, CompressorOxide, TDEFLFlush, TDEFLStatus};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{self as inflate, DecompressorOxide, inflate_flags};

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// Bytes of framing [`Compressor::compress`] adds to the algorithm's stream: the algorithm id and the
/// Adler-32 check (see the layout table in the module header).
pub const OVERHEAD: usize = 1 + 4;

/// The most stored bytes [`Compressor::compress`] can produce: LZ4's worst case for a page
/// (`lz4_flex::block::get_maximum_output_size`, which also bounds deflate's stored blocks) plus
/// [`OVERHEAD`]. A `threshold` of at least this never rejects a page.
pub const MAX_STORED: usize = lz4_flex::block::get_maximum_output_size(PAGE_SIZE) + OVERHEAD;

/// Offset of the check in the stored bytes.
const CHECK: core::ops::Range<usize> = 1..OVERHEAD;

/// The highest deflate level miniz_oxide knows (`UberCompression`).
const MAX_LEVEL: u8 = 10;

/// Raw deflate (negative window bits: no zlib header or trailer), default strategy.
const RAW_DEFLATE_WINDOW_BITS: i32 = -15;

/// Which algorithm a [`Compressor`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Lz4,
    /// Deflate at `level` 1 (fastest) ..= 10 (miniz_oxide's slowest, "uber"); 6 is zlib's default.
    Deflate {
        level: u8,
    },
}

impl Algorithm {
    const LZ4_ID: u8 = 1;
    const DEFLATE_ID: u8 = 2;

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Lz4 => "lz4",
            Algorithm::Deflate { .. } => "deflate",
        }
    }

    /// The id stored in byte 0 of every compressed page; stable across versions.
    pub fn id(self) -> u8 {
        match self {
            Algorithm::Lz4 => Self::LZ4_ID,
            Algorithm::Deflate { .. } => Self::DEFLATE_ID,
        }
    }

    /// The algorithm with this id; `level` is used by deflate only and must be 1..=10.
    pub fn from_id(id: u8, level: u8) -> Option<Self> {
        match id {
            Self::LZ4_ID => Some(Algorithm::Lz4),
            Self::DEFLATE_ID if (1..=MAX_LEVEL).contains(&level) => Some(Algorithm::Deflate { level }),
            _ => None,
        }
    }
}

/// Why a page was not compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressError {
    /// The stored bytes would be `size` (header included), more than the caller's `threshold`: store the
    /// page whole or reject it.
    Incompressible { size: usize, threshold: usize },
    /// A deflate level outside 1..=10.
    BadLevel(u8),
    /// The algorithm ran out of output buffer. Cannot happen with [`MAX_STORED`] bytes of buffer; kept so
    /// a library surprise is an error, not a panic.
    OutputTooSmall,
}

/// Why stored bytes could not be turned back into a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecompressError {
    /// A malformed stream, a decoded size other than [`PAGE_SIZE`], trailing bytes, too short to hold
    /// the header, or a check mismatch.
    Corrupt,
    /// Byte 0 names no known algorithm.
    UnknownAlgorithm(u8),
    /// Never returned by [`Compressor::decompress`] (its output is a whole page, and a stream that
    /// decodes to more is [`DecompressError::Corrupt`]); reserved for decoding into a caller's slice.
    OutputTooSmall,
}

/// zswap's same-filled detection: `Some(word)` if the page is one 8-byte word repeated (read
/// little-endian), e.g. `Some(0)` for a zero page.
pub fn same_filled(page: &[u8; PAGE_SIZE]) -> Option<u64> {
    let (words, _) = page.as_chunks::<8>();
    let first = words[0];
    words.iter().all(|w| *w == first).then(|| u64::from_le_bytes(first))
}

/// Fill `page` with `word` repeated (little-endian), the inverse of [`same_filled`].
pub fn fill_same(page: &mut [u8; PAGE_SIZE], word: u64) {
    let bytes = word.to_le_bytes();
    let (words, _) = page.as_chunks_mut::<8>();
    words.fill(bytes);
}

/// The compressing half of each algorithm's state.
enum Engine {
    /// LZ4's hash table, kept so it is not rebuilt on the stack for every page.
    Lz4(Box<lz4_flex::block::CompressTable>),
    /// miniz_oxide's deflate state (≈ 310 KiB, itself partly boxed).
    Deflate(Box<CompressorOxide>),
}

/// One compressor with its scratch state (one per CPU in the kernel). See the module header.
///
/// ```
/// use compress::{Algorithm, CompressError, Compressor, PAGE_SIZE};
/// let mut c = Compressor::new(Algorithm::Deflate { level: 1 }).unwrap();
/// let mut page = [0u8; PAGE_SIZE];
/// page[..12].copy_from_slice(b"hello, page!");
/// let stored = c.compress(&page, 3 * PAGE_SIZE / 4).unwrap().to_vec(); // the pool's copy
/// assert!(stored.len() < 64);
/// let mut back = [0xff; PAGE_SIZE];
/// c.decompress(&stored, &mut back).unwrap();
/// assert_eq!(back, page);
/// // Any compressor reads any algorithm's stored bytes.
/// let mut lz4 = Compressor::new(Algorithm::Lz4).unwrap();
/// lz4.decompress(&stored, &mut back).unwrap();
/// // A page that does not shrink below the threshold is the caller's to store whole or reject.
/// let mut x = 1u32; // xorshift32: bytes that do not compress
/// let noise: [u8; PAGE_SIZE] = core::array::from_fn(|_| {
///     x ^= x << 13;
///     x ^= x >> 17;
///     x ^= x << 5;
///     x as u8
/// });
/// assert!(matches!(lz4.compress(&noise, 3 * PAGE_SIZE / 4), Err(CompressError::Incompressible { .. })));
/// ```
pub struct Compressor {
    alg: Algorithm,
    engine: Engine,
    /// Inflate's state: kept by every compressor, since stored bytes say their own algorithm.
    inflate: Box<DecompressorOxide>,
    /// Where [`Compressor::compress`] builds the stored bytes it returns.
    out: Box<[u8; MAX_STORED]>,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for `alg` with all its buffers; `Err(BadLevel)` for a deflate level outside 1..=10.
    pub fn new(alg: Algorithm) -> Result<Self, CompressError> {
        let engine = match alg {
            Algorithm::Lz4 => Engine::Lz4(Box::new(lz4_flex::block::CompressTable::small())),
            Algorithm::Deflate { level } => {
                if !(1..=MAX_LEVEL).contains(&level) {
                    return Err(CompressError::BadLevel(level));
                }
                let flags = deflate::create_comp_flags_from_zip_params(
                    level.into(),
                    RAW_DEFLATE_WINDOW_BITS,
                    deflate::CompressionStrategy::Default as i32,
                );
                Engine::Deflate(Box::new(CompressorOxide::new(flags)))
            }
        };
        Ok(Self { alg, engine, inflate: Box::default(), out: Box::new([0; MAX_STORED]) })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Compress one page into the compressor's own buffer and return the stored bytes (header
    /// included), at most `threshold` and never more than [`MAX_STORED`] of them. Allocates nothing.
    pub fn compress(&mut self, page: &[u8; PAGE_SIZE], threshold: usize) -> Result<&[u8], CompressError> {
        let (head, body) = self.out.split_at_mut(OVERHEAD);
        let len = match &mut self.engine {
            Engine::Lz4(table) => lz4_flex::block::compress_into_with_table(page, body, table)
                .map_err(|_| CompressError::OutputTooSmall)?,
            Engine::Deflate(state) => {
                state.reset();
                match deflate::compress(state, page, body, TDEFLFlush::Finish) {
                    (TDEFLStatus::Done, PAGE_SIZE, len) => len,
                    _ => return Err(CompressError::OutputTooSmall),
                }
            }
        };
        let size = OVERHEAD + len;
        if size > threshold {
            return Err(CompressError::Incompressible { size, threshold });
        }
        head[0] = self.alg.id();
        let check = check(head[0], &body[..len], page);
        head[CHECK].copy_from_slice(&check.to_le_bytes());
        Ok(&self.out[..size])
    }

    /// Decompress stored bytes (as returned by [`Compressor::compress`], with either algorithm) into
    /// `page`. `Ok` only if they decode to exactly [`PAGE_SIZE`] bytes with nothing left over and the
    /// check matches; on `Err` the page holds garbage. Allocates nothing.
    pub fn decompress(&mut self, stored: &[u8], page: &mut [u8; PAGE_SIZE]) -> Result<(), DecompressError> {
        if stored.len() < OVERHEAD || stored.len() > MAX_STORED {
            return Err(DecompressError::Corrupt);
        }
        let (head, stream) = stored.split_at(OVERHEAD);
        let id = head[0];
        match id {
            Algorithm::LZ4_ID => match lz4_flex::block::decompress_into(stream, page) {
                Ok(PAGE_SIZE) => {}
                _ => return Err(DecompressError::Corrupt),
            },
            Algorithm::DEFLATE_ID => {
                self.inflate.init();
                let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
                match inflate::decompress(&mut self.inflate, stream, page, 0, flags) {
                    (TINFLStatus::Done, used, PAGE_SIZE) if used == stream.len() => {}
                    _ => return Err(DecompressError::Corrupt),
                }
            }
            other => return Err(DecompressError::UnknownAlgorithm(other)),
        }
        let stored_check = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if check(id, stream, page) != stored_check {
            return Err(DecompressError::Corrupt);
        }
        Ok(())
    }
}

/// Adler-32 of a whole page: the check a store keeps beside a page it holds uncompressed
/// (zstore's `Entry::Whole`), where no frame and so no frame check exists.
pub fn page_check(page: &[u8; PAGE_SIZE]) -> u32 {
    let mut adler = adler2::Adler32::new();
    adler.write_slice(page);
    adler.checksum()
}

/// The check of the layout table: Adler-32 over the id byte, the stream and the page.
fn check(id: u8, stream: &[u8], page: &[u8; PAGE_SIZE]) -> u32 {
    let mut adler = adler2::Adler32::new();
    adler.write_slice(&[id]);
    adler.write_slice(stream);
    adler.write_slice(page);
    adler.checksum()
}

#[cfg(test)]
mod tests;
