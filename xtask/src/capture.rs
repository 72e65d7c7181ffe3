//! `cargo xtask capture`: dump the anonymous pages of a live Linux process into a page file, so the
//! kernel's demos can replay *your* memory (`cargo xtask run --pages FILE`) instead of the sample in `data/`.
//!
//! # Why
//!
//! Compression ratios depend on the data. zcache, zswap and zram were judged on the anonymous memory of
//! real workloads (browsers, compilers, databases), and the pages a swap device sees are exactly those:
//! heap, stacks and anonymous mappings, never file pages (those are dropped and re-read, or go through
//! cleancache). This command copies such pages out of a running process through `/proc`, the way a
//! debugger or CRIU reads them, and reports what a zswap-like store would make of them: how many are
//! zero or same-filled (stored as one word) and how small LZ4 makes the rest.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | anonymous mapping | a private, readable and writable mapping with no file behind it: `[heap]`, `[stack]`, a nameless `rw-p` line of `/proc/PID/maps` (malloc arenas, thread stacks, `mmap(MAP_ANONYMOUS)`), or one named with `PR_SET_VMA_ANON_NAME` (`[anon:NAME]`) |
//! | resident page | a page of such a mapping that is in RAM or in swap (pagemap bit 63 or 62); a page never touched has no frame and is not captured |
//! | page file | what this writes and `--pages` reads: the captured pages, 4096 bytes each, back to back, gzip-compressed |
//! | same-filled page | one 8-byte word repeated over the page (`compress::same_filled`); zero pages are the common case. zswap and zram store them as the word alone (zram's `same_pages`) |
//! | stored size | what the kernel's `compress` crate keeps for a page: the LZ4 block plus its 5-byte header (`compress::OVERHEAD`) |
//!
//! Skipped: file-backed mappings (program text, libraries, their data segments), shared mappings
//! (`rw-s`: shared memory is not swapped as the process's own), read-only or inaccessible ones (guard
//! pages) and the kernel's `[vvar]`, `[vdso]`, `[vsyscall]`.
//!
//! # The files read
//!
//! | file | what it gives | how it is read |
//! |---|---|---|
//! | `/proc/PID/stat` | the process state after the last `)`: `T` stopped, `Z` zombie | text; missing means no such process |
//! | `/proc/PID/comm` | the program's name, for the default file name | text |
//! | `/proc/PID/maps` | `start-end perms offset dev inode path`, one mapping a line | text, parsed by [`parse_maps`] |
//! | `/proc/PID/pagemap` | one little-endian u64 per virtual page at offset `vpn * 8`: bit 63 present, bit 62 swapped (the frame number needs `CAP_SYS_ADMIN` and is not used) | 512 entries at a time |
//! | `/proc/PID/mem` | the process's memory at offset = virtual address | one 4096-byte read a resident page |
//!
//! Reading `mem`, `maps` and `pagemap` needs ptrace read access: the same user (and not a setuid
//! program), or root; Yama's `kernel.yama.ptrace_scope = 1` further limits it to one's own descendants, which
//! is why the `-- CMD` form, where xtask is the parent, always works. Without `pagemap` (a kernel built
//! without `CONFIG_PROC_PAGE_MONITOR`) every page of the mappings is read, untouched ones as zeros; the
//! summary says so.
//!
//! # When the snapshot is taken
//!
//! - `--pid PID`: now, while the process keeps running (it is not stopped: stopping a shell's foreground job
//!   would hand the terminal back to the shell). A page the process writes during the capture may be read
//!   half old, half new; a mapping it unmaps meanwhile is counted as unreadable and skipped.
//! - `-- CMD ARGS`: xtask starts the command (stdin, stdout and stderr inherited) and captures it when it
//!   **stops itself** with SIGSTOP (`kill -STOP $$` in a shell script, `os.kill(os.getpid(),
//!   signal.SIGSTOP)` in Python), which xtask sees as state `T` in `/proc/PID/stat`, polled every 5 ms;
//!   or, with `--after SECS`, when that time has passed: then xtask sends SIGSTOP itself, so both ways
//!   the process is frozen while it is read. Whichever comes first wins. After the capture, or on any
//!   error, xtask kills the command (SIGKILL) and reaps it. Only the process xtask started is captured, not
//!   its children. A command that exits before it is captured is an error: there is nothing left to read.
//!
//! # Worked example
//!
//! The first test below starts Python, which maps 64 private anonymous pages, writes into each a 16-byte
//! marker, its index and a byte pattern, and stops itself. Among its 130-odd lines of maps are
//!
//! ```text
//! 55ecfdbdd000-55ecfdd6d000 rw-p 00000000 00:00 0        [heap]     400 pages: kept
//! 7f269fba6000-7f269fee7000 rw-p 00000000 00:00 0                   833 pages: kept
//! 7f269fee7000-7f269ff3e000 r--p 00000000 fe:00 316534   /usr/lib/locale/C.utf8/LC_CTYPE: a file, skipped
//! 7f26a0801000-7f26a0808000 r--s 00000000 fe:00 325745   /usr/lib/.../gconv-modules.cache: shared, skipped
//! 7fff2b202000-7fff2b223000 rw-p 00000000 00:00 0        [stack]     33 pages: kept
//! ```
//!
//! The 64 pages are inside the 833-page line: the kernel merges an anonymous mapping into its neighbour
//! when their flags agree. For its first page, xtask reads pagemap's entry at byte `0x7f269fba6 * 8` of
//! `pagemap`; if bit 63 or 62 is set, it reads 4096 bytes of `mem` at offset `0x7f269fba6000`. Nine
//! mappings span 1757 pages, of which 1430 are resident: 19 are zero, and LZ4 stores the other 1411 in
//! 36.7% of their size (most between 1 and 2.5 KiB). Each pattern page repeats a 251-byte cycle, so LZ4
//! stores it in about 300 bytes, in the histogram's first bucket.
//!
//! # Contracts
//!
//! | situation | outcome (one line, as `xtask: …`) |
//! |---|---|
//! | `--pid` names no process | `no process with pid N` |
//! | the process is a zombie | `process N has already exited (a zombie waiting for its parent to reap it)` |
//! | ptrace read access refused | `permission denied reading the memory of process N: …`, with the ptrace_scope advice |
//! | the process exits during the capture | `process N exited during the capture (K pages read)`; no file is left behind |
//! | the command exits before it is captured | ``the command `CMD` exited (STATUS) before it …`` with how to make it stop itself |
//! | not Linux, or no `/proc` | `capture needs Linux's /proc …` |
//! | no resident anonymous page | `process N (NAME) has no resident anonymous pages: nothing written` |
//!
//! The page file is written to `FILE.partial` and renamed to `FILE` only when complete, so a file with the
//! final name is always a whole capture. `--max-pages N` stops after N pages (in address order).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use compress::{Algorithm, Compressor, PAGE_SIZE};

/// Options of `cargo xtask capture`: `--pid PID`, or `-- CMD ARGS` with an optional `--after SECS`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CaptureOpts {
    /// Capture this running process (one you own, or any as root). It is not stopped.
    #[arg(long, value_name = "PID", conflicts_with_all = ["cmd", "after"], required_unless_present = "cmd")]
    pub pid: Option<u32>,
    /// With `-- CMD`: stop the command with SIGSTOP after this many seconds and capture it. Without it, xtask
    /// waits until the command stops itself (`kill -STOP $$`).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub after: Option<f64>,
    /// The page file to write (gzip) [default: target/zkernel/captures/<name>-<pid>.pages.gz].
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Capture at most this many pages, in address order.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pages: Option<u64>,
    /// The command to start and capture, after `--`: `cargo xtask capture -- python3 work.py`.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

fn parse_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds (0 or more, e.g. 2.5)")),
    }
}

/// Number of histogram buckets: eight of 512 bytes below a page, and one for "4096 or more".
pub const BUCKETS: usize = PAGE_SIZE / BUCKET_BYTES + 1;
/// Width of a histogram bucket, in stored bytes.
pub const BUCKET_BYTES: usize = 512;

/// What a zswap-like store would make of a set of pages: counted by [`PageStats::add`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Pages seen.
    pub pages: u64,
    /// Same-filled pages, zero pages included (zram's `same_pages`).
    pub same_filled: u64,
    /// The all-zero pages among them.
    pub zero: u64,
    /// Pages LZ4 compressed: those not same-filled.
    pub compressed: u64,
    /// Their stored sizes added up.
    pub stored_bytes: u64,
    /// Their stored sizes by bucket: `histogram[i]` counts sizes in `i * 512 ..= i * 512 + 511`, the last
    /// bucket every size of 4096 or more (incompressible: the kernel would keep the page whole).
    pub histogram: [u64; BUCKETS],
}

impl PageStats {
    /// Count one page; `lz4` is a compressor made with `Algorithm::Lz4`.
    pub fn add(&mut self, page: &[u8; PAGE_SIZE], lz4: &mut Compressor) -> Result<()> {
        self.pages += 1;
        if let Some(word) = compress::same_filled(page) {
            self.same_filled += 1;
            self.zero += u64::from(word == 0);
            return Ok(());
        }
        // No threshold: every page gets a size, at most compress::MAX_STORED.
        let size = lz4.compress(page, usize::MAX).map_err(|e| anyhow::anyhow!("LZ4 failed on a page: {e:?}"))?.len();
        self.compressed += 1;
        self.stored_bytes += size as u64;
        self.histogram[(size / BUCKET_BYTES).min(BUCKETS - 1)] += 1;
        Ok(())
    }
}

/// How the process came to be captured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// `--pid`: read while it runs.
    Pid,
    /// `-- CMD`: it stopped itself (SIGSTOP).
    StoppedItself,
    /// `-- CMD --after SECS`: xtask stopped it after that many seconds.
    StoppedAfter(f64),
}

/// The outcome of [`capture`], printed by [`print_summary`].
#[derive(Clone, Debug)]
pub struct CaptureSummary {
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub name: String,
    pub trigger: Trigger,
    /// The page file written.
    pub out: PathBuf,
    /// Its size in bytes (gzip).
    pub out_bytes: u64,
    /// Anonymous mappings read.
    pub mappings: usize,
    /// Pages those mappings span (resident or not).
    pub mapped_pages: u64,
    /// The captured pages: `stats.pages` is the number of pages in the file.
    pub stats: PageStats,
    /// Resident pages `/proc/PID/mem` refused (EIO: the mapping changed under a running process).
    pub unreadable: u64,
    /// `--max-pages` stopped the capture early.
    pub truncated: bool,
    /// Whether pagemap chose the resident pages (else every page of the mappings was read).
    pub pagemap: bool,
}

/// Capture the process `opts` names into a page file; without `--out` the file goes to `default_dir`
/// (xtask passes `target/zkernel/captures`). See the module header for when and what is read.
pub fn capture(opts: &CaptureOpts, default_dir: &Path) -> Result<CaptureSummary> {
    check_host()?;
    match (opts.pid, opts.cmd.is_empty()) {
        (Some(pid), true) => {
            if opts.after.is_some() {
                bail!("--after applies to a command started with `-- CMD`, not to --pid");
            }
            check_alive(pid)?;
            capture_pid(pid, Trigger::Pid, opts, default_dir)
        }
        (None, false) => {
            let mut started = Started::spawn(&opts.cmd)?;
            let trigger = started.wait_until_stopped(opts.after)?;
            // `started` kills and reaps the command when it goes out of scope, whatever the outcome.
            capture_pid(started.pid, trigger, opts, default_dir)
        }
        (Some(_), false) => bail!("give either --pid PID or -- CMD ARGS, not both"),
        (None, true) => bail!("nothing to capture: give --pid PID or -- CMD ARGS"),
    }
}

/// Print [`render_summary`] to stdout.
pub fn print_summary(s: &CaptureSummary) {
    print!("{}", render_summary(s));
}

/// The summary as text: what was captured, same-filled pages, the LZ4 histogram, and how to replay it.
pub fn render_summary(s: &CaptureSummary) -> String {
    let st = &s.stats;
    let how = match s.trigger {
        Trigger::Pid => "read while it ran".to_string(),
        Trigger::StoppedItself => "stopped itself; killed after the capture".to_string(),
        Trigger::StoppedAfter(t) => format!("stopped by xtask after {t} s; killed after the capture"),
    };
    let mut o = format!("capture of process {} ({}), {how}\n", s.pid, s.name);
    let which = if s.pagemap { "resident or swapped" } else { "all (no pagemap: untouched pages read as zeros)" };
    o += &format!("  anonymous mappings   {} ({} pages mapped)\n", s.mappings, s.mapped_pages);
    o += &format!("  pages captured       {} ({which})", st.pages);
    if s.truncated {
        o += ", stopped at --max-pages";
    }
    o += "\n";
    if s.unreadable > 0 {
        o += &format!("  unreadable, skipped  {} (unmapped while being read)\n", s.unreadable);
    }
    o += &format!(
        "  same-filled          {} ({}), of which zero {} ({})\n",
        st.same_filled,
        percent(st.same_filled, st.pages),
        st.zero,
        percent(st.zero, st.pages)
    );
    o += &format!(
        "  LZ4 on the other {}: {} stored bytes, {} of their {} bytes\n",
        st.compressed,
        st.stored_bytes,
        percent(st.stored_bytes, st.compressed * PAGE_SIZE as u64),
        st.compressed * PAGE_SIZE as u64
    );
    o += "  stored size (bytes)  pages\n";
    let most = st.histogram.iter().copied().max().unwrap_or(0).max(1);
    for (i, &n) in st.histogram.iter().enumerate() {
        let label = if i + 1 == BUCKETS {
            format!(">= {PAGE_SIZE}")
        } else {
            format!("{} - {}", i * BUCKET_BYTES, (i + 1) * BUCKET_BYTES - 1)
        };
        // 40 columns for the largest bucket; any non-empty bucket gets at least one.
        let bar = "#".repeat(((n * 40).div_ceil(most)) as usize);
        let note = if i + 1 == BUCKETS { "  (incompressible: kept whole)" } else { "" };
        o += format!("  {label:>11} {n:>14}  {bar}{note}").trim_end();
        o += "\n";
    }
    o += &format!("wrote {} ({} bytes)\n", s.out.display(), s.out_bytes);
    o += &format!("replay it: cargo xtask run --pages {}\n", s.out.display());
    o
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "-".to_string() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

// ---- the host and the process --------------------------------------------------------------------------

/// Linux's errno values met here (the only host that gets past [`check_host`]).
const ESRCH: i32 = 3;
const EIO: i32 = 5;

/// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;

/// pagemap entries read at a time.
const PAGEMAP_CHUNK: u64 = 512;

fn check_host() -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!(
            "capture needs Linux's /proc (/proc/PID/maps and /proc/PID/mem); this host runs {}",
            std::env::consts::OS
        );
    }
    if !Path::new("/proc/self/maps").exists() {
        bail!("capture needs Linux's /proc, and /proc/self/maps is missing: is /proc mounted?");
    }
    let host = host_page_size();
    if host != PAGE_SIZE as u64 {
        bail!("capture reads {PAGE_SIZE}-byte pages, and this host's pages are {host} bytes");
    }
    Ok(())
}

#[cfg(unix)]
fn host_page_size() -> u64 {
    // SAFETY: sysconf takes no pointers and only reads a constant of the C library.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(0)
}

#[cfg(not(unix))]
fn host_page_size() -> u64 {
    0
}

/// The process's state letter (`R`, `S`, `T`, `Z`, …), or `None` if there is no such process.
fn process_state(pid: u32) -> Result<Option<char>> {
    let path = format!("/proc/{pid}/stat");
    match std::fs::read_to_string(&path) {
        // `pid (comm) S ...`: comm may hold spaces and parentheses, so look after the last `)`.
        Ok(text) => {
            let state = text.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            state.map(Some).with_context(|| format!("{path}: no state after the name in `{}`", text.trim_end()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {path}")),
    }
}

fn check_alive(pid: u32) -> Result<()> {
    match process_state(pid)? {
        None => bail!("no process with pid {pid}"),
        Some('Z' | 'X') => bail!("process {pid} has already exited (a zombie waiting for its parent to reap it)"),
        Some(_) => Ok(()),
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim_end().to_string()).unwrap_or_default()
}

/// `name` with everything but ASCII letters, digits, `.`, `_` and `-` replaced by `_`, for a file name.
fn file_safe(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if s.is_empty() { "process".to_string() } else { s }
}

/// The error for a failed open of `/proc/PID/<what>`: no process, permission, or the I/O error itself.
fn open_error(pid: u32, what: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH) {
        return anyhow::anyhow!("no process with pid {pid}");
    }
    if e.kind() == io::ErrorKind::PermissionDenied {
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok();
        return anyhow::anyhow!("{}", permission_message(pid, scope.as_deref().map(str::trim)));
    }
    anyhow::Error::new(e).context(format!("opening /proc/{pid}/{what}"))
}

/// The advice for a refused read, given the value of `kernel.yama.ptrace_scope` if Yama is there.
fn permission_message(pid: u32, ptrace_scope: Option<&str>) -> String {
    let mut m = format!(
        "permission denied reading the memory of process {pid}: capture a process you own (not a setuid \
         program), or run as root"
    );
    match ptrace_scope {
        Some("1") => {
            m += "; kernel.yama.ptrace_scope is 1, so only a parent may read its children: start the \
                           program under xtask instead (`cargo xtask capture -- CMD ARGS`)"
        }
        Some("2") => m += "; kernel.yama.ptrace_scope is 2: only root may read another process",
        Some("3") => m += "; kernel.yama.ptrace_scope is 3: no process may read another one",
        _ => {}
    }
    m
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxp` / `rw-s` …: read, write, execute, private (`p`) or shared (`s`).
    pub perms: String,
    pub inode: u64,
    /// The file, `[heap]`, `[stack]`, `[anon:NAME]`, … or empty.
    pub path: String,
}

impl Mapping {
    /// Private, readable, writable, and no file behind it: see "anonymous mapping" in the module header.
    pub fn is_anonymous(&self) -> bool {
        let p = self.perms.as_bytes();
        let private_rw = p.len() == 4 && p[0] == b'r' && p[1] == b'w' && p[3] == b'p';
        let named_anon = self.path == "[heap]" || self.path.starts_with("[stack") || self.path.starts_with("[anon:");
        private_rw && self.inode == 0 && (self.path.is_empty() || named_anon)
    }

    pub fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE_SIZE as u64
    }
}

/// Parse the text of `/proc/PID/maps`; a malformed line is an error naming it.
pub fn parse_maps(text: &str) -> Result<Vec<Mapping>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parse = || -> Option<Mapping> {
            let mut f = line.splitn(6, ' ');
            let (range, perms, _offset, _dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let path = f.next().unwrap_or("").trim_start().to_string();
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            let aligned = start % PAGE_SIZE as u64 == 0 && end % PAGE_SIZE as u64 == 0;
            (start < end && aligned && perms.len() == 4).then_some(Mapping {
                start,
                end,
                perms: perms.to_string(),
                inode: inode.parse().ok()?,
                path,
            })
        };
        match parse() {
            Some(m) => out.push(m),
            None => bail!("line {}: cannot parse `{line}`", n + 1),
        }
    }
    Ok(out)
}

/// The anonymous mappings of `pid`, in address order.
fn anonymous_mappings(pid: u32) -> Result<Vec<Mapping>> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).map_err(|e| open_error(pid, "maps", e))?;
    Ok(parse_maps(&text).with_context(|| path.clone())?.into_iter().filter(Mapping::is_anonymous).collect())
}

/// The open `/proc` files of the process being read.
struct Proc {
    pid: u32,
    mem: File,
    /// `None` if the kernel has no pagemap.
    pagemap: Option<File>,
}

/// What one read of a page gave.
enum PageRead {
    Page,
    /// EIO: the address is no longer mapped (a running process unmapped it).
    Unreadable,
    /// End of file or ESRCH: the process's memory is gone, it exited.
    Gone,
}

impl Proc {
    fn open(pid: u32) -> Result<Self> {
        let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| open_error(pid, "mem", e))?;
        let pagemap = match File::open(format!("/proc/{pid}/pagemap")) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound && Path::new(&format!("/proc/{pid}")).exists() => None,
            Err(e) => return Err(open_error(pid, "pagemap", e)),
        };
        Ok(Self { pid, mem, pagemap })
    }

    /// Which of the `n` pages from virtual page number `vpn` on are resident (present or swapped);
    /// `None` if the process is gone.
    fn resident(&self, vpn: u64, n: u64) -> Result<Option<Vec<bool>>> {
        let Some(pagemap) = &self.pagemap else {
            return Ok(Some(vec![true; n as usize]));
        };
        let mut buf = vec![0u8; n as usize * 8];
        let got = match read_at(pagemap, vpn * 8, &mut buf) {
            Ok(0) => return Ok(None),
            Ok(got) => got,
            Err(e) if e.raw_os_error() == Some(ESRCH) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading /proc/{}/pagemap", self.pid)),
        };
        // A short read leaves the pages it did not cover out.
        let mut resident: Vec<bool> = buf[..got - got % 8]
            .as_chunks::<8>()
            .0
            .iter()
            .map(|e| u64::from_le_bytes(*e) & (PM_PRESENT | PM_SWAPPED) != 0)
            .collect();
        resident.resize(n as usize, false);
        Ok(Some(resident))
    }

    fn read_page(&self, addr: u64, page: &mut [u8; PAGE_SIZE]) -> Result<PageRead> {
        match read_at(&self.mem, addr, page) {
            Ok(PAGE_SIZE) => Ok(PageRead::Page),
            Ok(0) => Ok(PageRead::Gone),
            // A page is mapped whole or not at all: a short read means it went away mid-read.
            Ok(_) => Ok(PageRead::Unreadable),
            Err(e) if e.raw_os_error() == Some(EIO) => Ok(PageRead::Unreadable),
            Err(e) if e.raw_os_error() == Some(ESRCH) => Ok(PageRead::Gone),
            Err(e) => Err(e).with_context(|| format!("reading /proc/{}/mem at {addr:#x}", self.pid)),
        }
    }
}

/// Read into `buf` from `offset` until it is full, the file ends (`Ok(bytes read)`) or an error comes
/// before any byte was read.
fn read_at(mut file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    file.seek(SeekFrom::Start(offset))?;
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What [`copy_pages`] did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Copied {
    pages: u64,
    unreadable: u64,
    truncated: bool,
}

/// Hand every resident page of `maps` to `sink`, in address order, up to `max` pages.
fn copy_pages(
    proc: &Proc,
    maps: &[Mapping],
    max: Option<u64>,
    sink: &mut dyn FnMut(&[u8; PAGE_SIZE]) -> Result<()>,
) -> Result<Copied> {
    let mut done = Copied::default();
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let exited = |pages: u64| anyhow::anyhow!("process {} exited during the capture ({pages} pages read)", proc.pid);
    for m in maps {
        let (first, last) = (m.start / PAGE_SIZE as u64, m.end / PAGE_SIZE as u64);
        let mut vpn = first;
        while vpn < last {
            let n = (last - vpn).min(PAGEMAP_CHUNK);
            let resident = proc.resident(vpn, n)?.ok_or_else(|| exited(done.pages))?;
            for (i, _) in resident.iter().enumerate().filter(|(_, r)| **r) {
                if max.is_some_and(|max| done.pages >= max) {
                    done.truncated = true;
                    return Ok(done);
                }
                match proc.read_page((vpn + i as u64) * PAGE_SIZE as u64, &mut page)? {
                    PageRead::Page => {
                        sink(&page)?;
                        done.pages += 1;
                    }
                    PageRead::Unreadable => done.unreadable += 1,
                    PageRead::Gone => return Err(exited(done.pages)),
                }
            }
            vpn += n;
        }
    }
    Ok(done)
}

/// Read `pid`'s anonymous pages into the page file and count them.
fn capture_pid(pid: u32, trigger: Trigger, opts: &CaptureOpts, default_dir: &Path) -> Result<CaptureSummary> {
    let name = comm(pid);
    let out = match &opts.out {
        Some(out) => out.clone(),
        None => default_dir.join(format!("{}-{pid}.pages.gz", file_safe(&name))),
    };
    let proc = Proc::open(pid)?;
    let maps = anonymous_mappings(pid)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut partial = out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = write_pages(&proc, &maps, opts.max_pages, &partial);
    let (copied, stats) = match written {
        Ok(w) if w.1.pages > 0 => w,
        Ok(_) => {
            let _ = std::fs::remove_file(&partial);
            bail!("process {pid} ({name}) has no resident anonymous pages: nothing written");
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    let out_bytes = std::fs::metadata(&out).with_context(|| format!("reading {}", out.display()))?.len();
    Ok(CaptureSummary {
        pid,
        name,
        trigger,
        out,
        out_bytes,
        mappings: maps.len(),
        mapped_pages: maps.iter().map(Mapping::pages).sum(),
        stats,
        unreadable: copied.unreadable,
        truncated: copied.truncated,
        pagemap: proc.pagemap.is_some(),
    })
}

/// Copy the pages into a gzip file at `path`, counting them as they pass.
fn write_pages(proc: &Proc, maps: &[Mapping], max: Option<u64>, path: &Path) -> Result<(Copied, PageStats)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    let mut lz4 = Compressor::new(Algorithm::Lz4).map_err(|e| anyhow::anyhow!("LZ4 compressor: {e:?}"))?;
    let mut stats = PageStats::default();
    let copied = copy_pages(proc, maps, max, &mut |page| {
        stats.add(page, &mut lz4)?;
        gz.write_all(page).with_context(|| format!("writing {}", path.display()))
    })?;
    // finish() writes gzip's trailer; into_inner() flushes the buffer into the file.
    gz.finish()
        .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((copied, stats))
}

// ---- `-- CMD`: a command xtask starts ----------------------------------------------------------------

/// A command xtask started; killed (SIGKILL) and reaped when dropped.
struct Started {
    child: Child,
    pid: u32,
    line: String,
}

impl Started {
    fn spawn(cmd: &[String]) -> Result<Self> {
        let line = cmd.join(" ");
        let (prog, args) = cmd.split_first().context("no command given after `--`")?;
        let child = Command::new(prog).args(args).spawn().with_context(|| format!("starting `{line}`"))?;
        Ok(Self { pid: child.id(), child, line })
    }

    /// Wait until the command stops itself, or until `after` seconds have passed and then stop it;
    /// an error if it exits first.
    fn wait_until_stopped(&mut self, after: Option<f64>) -> Result<Trigger> {
        let start = Instant::now();
        let advice = "make it stop itself when its memory is worth capturing (`kill -STOP $$` in a shell, \
                      `os.kill(os.getpid(), signal.SIGSTOP)` in Python) or capture it while it runs with --after SECS";
        loop {
            if let Some(status) = self.child.try_wait().with_context(|| format!("waiting for `{}`", self.line))? {
                match after {
                    Some(t) => bail!(
                        "the command `{}` exited ({status}) after {:.1} s, before --after {t} s: nothing to capture",
                        self.line,
                        start.elapsed().as_secs_f64()
                    ),
                    None => bail!("the command `{}` exited ({status}) before it stopped itself: {advice}", self.line),
                }
            }
            if process_state(self.pid)? == Some('T') {
                return Ok(Trigger::StoppedItself);
            }
            if let Some(t) = after
                && start.elapsed().as_secs_f64() >= t
            {
                send_stop(self.pid).with_context(|| format!("stopping `{}` (pid {})", self.line, self.pid))?;
                self.wait_for_state_t()?;
                return Ok(Trigger::StoppedAfter(t));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// After SIGSTOP: wait (up to 5 s) until the kernel has stopped the process.
    fn wait_for_state_t(&mut self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Some(status) = self.child.try_wait()? {
                bail!("the command `{}` exited ({status}) while xtask stopped it: nothing to capture", self.line);
            }
            if process_state(self.pid)? == Some('T') {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!("the command `{}` (pid {}) did not stop within 5 s of SIGSTOP", self.line, self.pid)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too; an error means it already exited, and wait() reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn send_stop(pid: u32) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) takes no pointers. `pid` is our own child, which we have not reaped (only Started's
    // drop does), so the number cannot have been reused by another process.
    if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}

#[cfg(not(unix))]
fn send_stop(_pid: u32) -> Result<()> {
    bail!("capture needs Linux's /proc and signals")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const MARKER: &[u8; 16] = b"ZKCAPTURE-TEST\0\0";
    const PATTERN_PAGES: usize = 64;

    /// Page `i` of the pattern: the marker, `i` as a little-endian u64, then a 251-byte cycle shifted by i.
    fn pattern_page(i: usize) -> Vec<u8> {
        let mut p = MARKER.to_vec();
        p.extend_from_slice(&(i as u64).to_le_bytes());
        p.extend((24..PAGE_SIZE).map(|j| ((i * 131 + j * 7) % 251) as u8));
        p
    }

    /// A Python program that writes the pattern into a private anonymous mapping of PATTERN_PAGES
    /// pages, then runs `then`.
    fn python_filler(then: &str) -> Vec<String> {
        let script = format!(
            "import mmap, os, signal, struct, time\n\
             n = {PATTERN_PAGES}\n\
             m = mmap.mmap(-1, n * 4096, flags=mmap.MAP_PRIVATE)\n\
             for i in range(n):\n\
             \x20   page = b'ZKCAPTURE-TEST\\0\\0' + struct.pack('<Q', i) + bytes((i * 131 + j * 7) % 251 for j in range(24, 4096))\n\
             \x20   m[i * 4096:(i + 1) * 4096] = page\n\
             {then}\n"
        );
        vec!["python3".into(), "-c".into(), script]
    }

    fn need_python() {
        let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(ok, "these tests need python3 on PATH: it fills a process's memory with a known pattern");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zkernel-capture-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_pages(path: &Path) -> Vec<Vec<u8>> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(File::open(path).unwrap()).read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len() % PAGE_SIZE, 0);
        raw.chunks(PAGE_SIZE).map(<[u8]>::to_vec).collect()
    }

    fn assert_pattern_found(pages: &[Vec<u8>]) {
        let have: HashSet<&[u8]> = pages.iter().map(Vec::as_slice).collect();
        let missing: Vec<usize> = (0..PATTERN_PAGES).filter(|&i| !have.contains(&pattern_page(i)[..])).collect();
        assert!(missing.is_empty(), "pattern pages missing from the dump: {missing:?}");
    }

    #[test]
    fn a_command_that_stops_itself_is_captured_with_its_pattern() {
        need_python();
        let dir = temp_dir("stop");
        let out = dir.join("py.pages.gz");
        let opts = CaptureOpts {
            out: Some(out.clone()),
            cmd: python_filler("os.kill(os.getpid(), signal.SIGSTOP)"),
            ..Default::default()
        };
        let s = capture(&opts, &dir).unwrap();
        assert_eq!(s.trigger, Trigger::StoppedItself);
        assert_eq!((s.out.as_path(), s.name.as_str(), s.truncated, s.pagemap), (out.as_path(), "python3", false, true));
        let pages = read_pages(&out);
        assert_pattern_found(&pages);
        assert_eq!(s.stats.pages, pages.len() as u64);
        assert_eq!(s.out_bytes, std::fs::metadata(&out).unwrap().len());
        // The counts describe the file: recount it.
        let mut lz4 = Compressor::new(Algorithm::Lz4).unwrap();
        let mut recount = PageStats::default();
        for p in &pages {
            recount.add(p[..].try_into().unwrap(), &mut lz4).unwrap();
        }
        assert_eq!(recount, s.stats);
        // The pattern's 64 pages each compress below 512 bytes.
        assert!(s.stats.histogram[0] >= PATTERN_PAGES as u64, "{:?}", s.stats.histogram);
        // The command was killed and reaped; no partial file is left.
        assert_eq!(process_state(s.pid).unwrap(), None);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn after_secs_stops_a_running_command_and_captures_it() {
        need_python();
        let dir = temp_dir("after");
        let opts = CaptureOpts { after: Some(2.0), cmd: python_filler("time.sleep(60)"), ..Default::default() };
        let started = Instant::now();
        let s = capture(&opts, &dir).unwrap();
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(s.trigger, Trigger::StoppedAfter(2.0));
        // The default name: <comm>-<pid>.pages.gz under the default directory.
        assert_eq!(s.out, dir.join(format!("python3-{}.pages.gz", s.pid)));
        assert_pattern_found(&read_pages(&s.out));
        assert_eq!(process_state(s.pid).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn max_pages_caps_the_file() {
        need_python();
        let dir = temp_dir("max");
        let opts = CaptureOpts {
            max_pages: Some(10),
            cmd: python_filler("os.kill(os.getpid(), signal.SIGSTOP)"),
            ..Default::default()
        };
        let s = capture(&opts, &dir).unwrap();
        assert_eq!((s.stats.pages, s.truncated), (10, true));
        assert_eq!(read_pages(&s.out).len(), 10);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_that_does_not_exist_is_named() {
        // Pids are below pid_max, so pid_max itself never names a process.
        let pid: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
        let dir = temp_dir("nopid");
        let opts = CaptureOpts { pid: Some(pid), ..Default::default() };
        let err = capture(&opts, &dir).unwrap_err();
        assert_eq!(format!("{err:#}"), format!("no process with pid {pid}"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_zombie_has_already_exited() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = Instant::now();
        while process_state(pid).unwrap() != Some('Z') {
            assert!(start.elapsed() < Duration::from_secs(10), "`true` did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        let err =
            capture(&CaptureOpts { pid: Some(pid), ..Default::default() }, Path::new("/nonexistent")).unwrap_err();
        child.wait().unwrap();
        assert_eq!(
            format!("{err:#}"),
            format!("process {pid} has already exited (a zombie waiting for its parent to reap it)")
        );
    }

    #[test]
    fn a_process_that_exits_during_the_capture_is_reported() {
        need_python();
        let mut started = Started::spawn(&python_filler("os.kill(os.getpid(), signal.SIGSTOP)")).unwrap();
        assert_eq!(started.wait_until_stopped(None).unwrap(), Trigger::StoppedItself);
        let pid = started.pid;
        let proc = Proc::open(pid).unwrap();
        let maps = anonymous_mappings(pid).unwrap();
        assert!(maps.iter().any(|m| m.pages() >= PATTERN_PAGES as u64));
        // Read three pages, then let the process die under the reader.
        let mut seen = 0;
        let err = copy_pages(&proc, &maps, None, &mut |_| {
            seen += 1;
            if seen == 3 {
                started.child.kill()?;
                started.child.wait()?;
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(format!("{err:#}"), format!("process {pid} exited during the capture (3 pages read)"));
    }

    #[test]
    fn a_command_that_exits_instead_of_stopping_is_an_error() {
        let opts = CaptureOpts { cmd: vec!["sh".into(), "-c".into(), "exit 3".into()], ..Default::default() };
        let err = format!("{:#}", capture(&opts, Path::new("/nonexistent")).unwrap_err());
        assert!(
            err.starts_with("the command `sh -c exit 3` exited (exit status: 3) before it stopped itself: make it"),
            "{err}"
        );
        let missing = CaptureOpts { cmd: vec!["/nonexistent/prog".into()], ..Default::default() };
        let err = format!("{:#}", capture(&missing, Path::new("/nonexistent")).unwrap_err());
        assert!(err.starts_with("starting `/nonexistent/prog`: "), "{err}");
    }

    #[test]
    fn refused_access_gets_advice() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let msg = format!("{:#}", open_error(7, "mem", denied));
        assert!(msg.starts_with("permission denied reading the memory of process 7: capture a process you own"));
        assert_eq!(
            permission_message(7, Some("1")),
            "permission denied reading the memory of process 7: capture a process you own (not a setuid program), \
             or run as root; kernel.yama.ptrace_scope is 1, so only a parent may read its children: start the \
             program under xtask instead (`cargo xtask capture -- CMD ARGS`)"
        );
        assert!(!permission_message(7, Some("0")).contains("ptrace_scope"));
        assert_eq!(format!("{:#}", open_error(7, "mem", io::Error::from_raw_os_error(ESRCH))), "no process with pid 7");
        assert_eq!(
            format!("{:#}", open_error(7, "mem", io::Error::from_raw_os_error(EIO))),
            format!("opening /proc/7/mem: {}", io::Error::from_raw_os_error(EIO))
        );
    }

    #[test]
    fn maps_lines_are_parsed_and_only_anonymous_ones_kept() {
        let text = "\
55d2a6f1e000-55d2a7102000 rw-p 00000000 00:00 0                          [heap]
5600aa000000-5600aa001000 r--p 00000000 08:01 1234                       /usr/bin/python3.11
5600aa200000-5600aa203000 rw-p 00003000 08:01 1234                       /usr/bin/python3.11
7f0e5c3c1000-7f0e5c401000 rw-p 00000000 00:00 0 
7f0e5c401000-7f0e5c402000 ---p 00000000 00:00 0 
7f0e5c500000-7f0e5c510000 rw-s 00000000 00:01 99                         /dev/zero (deleted)
7f0e5c600000-7f0e5c601000 rw-p 00000000 00:00 0                          [anon:my arena]
7ffc1a2b0000-7ffc1a2d1000 rw-p 00000000 00:00 0                          [stack]
7ffc1a3f0000-7ffc1a3f4000 r--p 00000000 00:00 0                          [vvar]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        let maps = parse_maps(text).unwrap();
        assert_eq!(maps.len(), 10);
        assert_eq!(
            maps[6],
            Mapping {
                start: 0x7f0e5c600000,
                end: 0x7f0e5c601000,
                perms: "rw-p".into(),
                inode: 0,
                path: "[anon:my arena]".into()
            }
        );
        let kept: Vec<(u64, &str)> =
            maps.iter().filter(|m| m.is_anonymous()).map(|m| (m.pages(), m.path.as_str())).collect();
        assert_eq!(kept, [(484, "[heap]"), (64, ""), (1, "[anon:my arena]"), (33, "[stack]")]);
        let err = format!("{:#}", parse_maps("55d2a6f1e000-55d2a6f1e800 rw-p 00000000 00:00 0\n").unwrap_err());
        assert_eq!(err, "line 1: cannot parse `55d2a6f1e000-55d2a6f1e800 rw-p 00000000 00:00 0`");
        assert!(parse_maps("zz-10 rw-p 0 00:00 0\n").is_err());
    }

    #[test]
    fn page_stats_count_same_filled_pages_and_bucket_lz4_sizes() {
        let mut lz4 = Compressor::new(Algorithm::Lz4).unwrap();
        let mut x = 0x1234_5678u32; // xorshift32: bytes LZ4 cannot shrink
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        };
        let zero = [0u8; PAGE_SIZE];
        let mut word = [0u8; PAGE_SIZE];
        compress::fill_same(&mut word, 0xdead_beef_0000_0001);
        let mut text = [0u8; PAGE_SIZE];
        text[..22].copy_from_slice(b"a short line of text.\n");
        let mut half = [0u8; PAGE_SIZE];
        half[..PAGE_SIZE / 2].iter_mut().for_each(|b| *b = noise());
        let random: [u8; PAGE_SIZE] = std::array::from_fn(|_| noise());
        let mut stats = PageStats::default();
        for page in [&zero, &zero, &word, &text, &half, &random, &random] {
            stats.add(page, &mut lz4).unwrap();
        }
        let mut size = |p: &[u8; PAGE_SIZE]| lz4.compress(p, usize::MAX).unwrap().len() as u64;
        let stored = size(&text) + size(&half) + 2 * size(&random);
        let expected = PageStats {
            pages: 7,
            same_filled: 3,
            zero: 2,
            compressed: 4,
            stored_bytes: stored,
            // text: a few dozen bytes; half noise: 2048 and a little; noise: more than a page.
            histogram: [1, 0, 0, 0, 1, 0, 0, 0, 2],
        };
        assert_eq!(stats, expected);
        let summary = CaptureSummary {
            pid: 42,
            name: "demo".into(),
            trigger: Trigger::Pid,
            out: "x.pages.gz".into(),
            out_bytes: 999,
            mappings: 2,
            mapped_pages: 10,
            stats,
            unreadable: 0,
            truncated: false,
            pagemap: true,
        };
        let text = render_summary(&summary);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "capture of process 42 (demo), read while it ran");
        assert_eq!(lines[2], "  pages captured       7 (resident or swapped)");
        assert_eq!(lines[3], "  same-filled          3 (42.9%), of which zero 2 (28.6%)");
        assert_eq!(lines[6], format!("  {:>11} {:>14}  {}", "0 - 511", 1, "#".repeat(20)));
        assert_eq!(
            lines[14],
            format!("  {:>11} {:>14}  {}  (incompressible: kept whole)", ">= 4096", 2, "#".repeat(40))
        );
        assert_eq!(lines[15..], ["wrote x.pages.gz (999 bytes)", "replay it: cargo xtask run --pages x.pages.gz"]);
    }

    #[test]
    fn options_parse_as_cargo_xtask_capture() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            opts: CaptureOpts,
        }
        let o = Cli::try_parse_from(["capture", "--after", "1.5", "--", "python3", "-c", "x"]).unwrap().opts;
        assert_eq!((o.after, o.cmd.len(), o.pid), (Some(1.5), 3, None));
        let o = Cli::try_parse_from(["capture", "--pid", "12", "--max-pages", "5", "-o", "a.gz"]).unwrap().opts;
        assert_eq!((o.pid, o.max_pages, o.out), (Some(12), Some(5), Some(PathBuf::from("a.gz"))));
        for bad in [
            &["capture"][..],
            &["capture", "--pid", "1", "--", "ls"],
            &["capture", "--pid", "1", "--after", "2"],
            &["capture", "--after", "-1", "--", "ls"],
            &["capture", "--pid", "1", "--max-pages", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
