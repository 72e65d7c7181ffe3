//! The docs check: every "Try it" block in `docs/*.md` and `README.md` is run, and its expected key
//! lines must appear in what it prints, as a doctest's output must. `cargo xtask test --filter docs`
//! runs only this; the full `cargo xtask test` runs it last and counts each block as one test.
//!
//! A Try-it block is a ```` ```sh try ```` fence holding one command (lines ending in `\` continue it),
//! followed, after blank lines only, by a ```` ```text expect ```` fence holding the key lines:
//!
//! ````text
//! ```sh try
//! cargo xtask run --workload swap -- swap_mem=64 swap_accesses=768
//! ```
//!
//! ```text expect
//! swap: region 192 pages, memory 64 pages
//! tmem-zsmalloc ... mismatches 0
//! ```
//! ````
//!
//! | rule | meaning |
//! |---|---|
//! | how a line matches | as **substrings**, no regex: the expected line is cut at each `...`; the pieces, trimmed, must occur in that order in one output line |
//! | spaces | a run of spaces or tabs counts as one space, in the expected line and in the output (columns may shift) |
//! | order | the expected lines match output lines in order, each on a later line than the one before |
//! | blank lines | in the expect block they are ignored |
//! | exit status | the command must exit 0; ```` ```sh try fails ```` means it must exit non-zero |
//! | output | stdout and stderr together, as a reader sees them in a terminal |
//! | where it runs | `sh -c` in the workspace root, with the outer cargo's `CARGO_*`/`RUSTC*` variables removed |
//! | twice the same command | it runs once; every block that names it is checked against that one output |
//! | timeout | 300 s per command; the process group is killed after that |
//! | recursion | the commands run with `ZKERNEL_DOCS_CHECK=1`; a `cargo xtask test` inside one skips this check |
//!
//! A ```` ```sh try ```` with no expect block after it, an empty command, two commands in one block or
//! one command marked both `try` and `try fails` is an error in the docs, reported with file and line.
//! Keep each command small: the check runs on every CI run (see `docs/README.md`, "Try it").

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Set in the environment of every Try-it command, so a nested `cargo xtask test` skips this check.
pub const NESTED_ENV: &str = "ZKERNEL_DOCS_CHECK";
/// How long one Try-it command may run.
const TIMEOUT: Duration = Duration::from_secs(300);

/// One Try-it block of a Markdown file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TryIt {
    /// The file, relative to the workspace root (`docs/swap.md`).
    pub file: String,
    /// 1-based line of the ```` ```sh try ```` fence.
    pub line: usize,
    pub command: String,
    pub must_fail: bool,
    /// The expected key lines, each with its 1-based line in the file.
    pub expect: Vec<(usize, String)>,
}

impl TryIt {
    /// Its name in `cargo xtask test`'s output and for `--filter`: `docs/swap.md:42`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Find every Try-it block of one Markdown text. `file` only names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<TryIt>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((ticks, info)) = fence_open(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let body_end = fence_close(&lines, start + 1, ticks)
            .with_context(|| format!("{file}:{}: a ``` fence that is never closed", start + 1))?;
        let words: Vec<&str> = info.split_whitespace().collect();
        if words.first() != Some(&"sh") || words.get(1) != Some(&"try") {
            i = body_end + 1;
            continue;
        }
        let must_fail = match &words[2..] {
            [] => false,
            ["fails"] => true,
            other => bail!("{file}:{}: unknown words after ```sh try: {other:?} (only `fails` is known)", start + 1),
        };
        let command =
            join_command(&lines[start + 1..body_end]).map_err(|why| anyhow::anyhow!("{file}:{}: {why}", start + 1))?;
        // The expect fence: the next non-blank line.
        let mut j = body_end + 1;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        let expect_fence = lines.get(j).and_then(|l| fence_open(l));
        let Some((expect_ticks, expect_info)) = expect_fence else {
            bail!("{file}:{}: a ```sh try block must be followed by a ```text expect block", start + 1);
        };
        if expect_info.split_whitespace().collect::<Vec<_>>() != ["text", "expect"] {
            bail!("{file}:{}: a ```sh try block must be followed by a ```text expect block", start + 1);
        }
        let expect_end = fence_close(&lines, j + 1, expect_ticks)
            .with_context(|| format!("{file}:{}: the expect block is never closed", j + 1))?;
        let expect: Vec<(usize, String)> = (j + 1..expect_end)
            .filter(|&k| !lines[k].trim().is_empty())
            .map(|k| (k + 1, lines[k].trim().to_string()))
            .collect();
        if expect.is_empty() {
            bail!("{file}:{}: the expect block has no lines: a Try-it must check something", j + 1);
        }
        found.push(TryIt { file: file.to_string(), line: start + 1, command, must_fail, expect });
        i = expect_end + 1;
    }
    Ok(found)
}

/// A fence that opens at column 0: its length in backticks (3 or more) and its info string
/// (```` ```sh try ```` → `(3, "sh try")`). A longer fence can hold shorter ones, as in CommonMark.
fn fence_open(line: &str) -> Option<(usize, &str)> {
    let ticks = line.len() - line.trim_start_matches('`').len();
    (ticks >= 3).then(|| (ticks, line[ticks..].trim()))
}

/// The index of the line at or after `from` that closes a fence of `ticks` backticks: only backticks,
/// at least as many.
fn fence_close(lines: &[&str], from: usize, ticks: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| {
        let l = lines[k].trim_end();
        l.len() >= ticks && l.bytes().all(|b| b == b'`')
    })
}

/// The one command of a ```sh try block: its lines, with `\` continuations joined.
fn join_command(body: &[&str]) -> std::result::Result<String, String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for l in body {
        let l = l.trim();
        if l.is_empty() && current.is_empty() {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(l);
                commands.push(std::mem::take(&mut current).trim().to_string());
            }
        }
    }
    if !current.trim().is_empty() {
        return Err("the command ends with a `\\` and nothing after it".into());
    }
    match commands.len() {
        0 => Err("the ```sh try block is empty".into()),
        1 => Ok(commands.remove(0)),
        n => Err(format!("the ```sh try block has {n} commands; a Try-it runs exactly one")),
    }
}

/// Collapse runs of spaces and tabs into one space.
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Does `expected` (pieces cut at `...`) match this one output line?
pub fn line_matches(expected: &str, output_line: &str) -> bool {
    let out = squeeze(output_line);
    let mut rest = out.as_str();
    for piece in expected.split("...").map(|p| squeeze(p.trim())).filter(|p| !p.is_empty()) {
        match rest.find(&piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Check a block's expectations against one command's output: `Err` names the first expected line
/// that no later output line matches.
pub fn check_output(t: &TryIt, output: &str) -> std::result::Result<(), String> {
    let out: Vec<&str> = output.lines().collect();
    let mut next = 0;
    for (line, expected) in &t.expect {
        match (next..out.len()).find(|&k| line_matches(expected, out[k])) {
            Some(k) => next = k + 1,
            None => {
                let after = if next == 0 { String::new() } else { format!(" after output line {next}") };
                return Err(format!(
                    "{}:{line}: `{}` printed no line matching `{expected}`{after} ({} lines of output)",
                    t.file,
                    t.command,
                    out.len()
                ));
            }
        }
    }
    Ok(())
}

/// Every Try-it block of `README.md` and `docs/*.md` under `root`, in file order.
pub fn collect(root: &Path) -> Result<Vec<TryIt>> {
    let mut files: Vec<PathBuf> = vec![root.join("README.md")];
    let dir = root.join("docs");
    let mut md: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    md.sort();
    files.extend(md);
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        all.extend(parse(&rel, &text)?);
    }
    // One command, one expected exit status.
    let mut seen: BTreeMap<&str, &TryIt> = BTreeMap::new();
    for t in &all {
        if let Some(first) = seen.insert(&t.command, t)
            && first.must_fail != t.must_fail
        {
            bail!(
                "{} and {}: `{}` is marked to pass in one and to fail in the other",
                first.name(),
                t.name(),
                t.command
            );
        }
    }
    Ok(all)
}

/// What one command printed and how it ended.
#[derive(Debug)]
pub struct CommandRun {
    pub output: String,
    pub success: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// Run one Try-it command: `sh -c` in `root`, stdout and stderr together, killed after [`TIMEOUT`].
pub fn run_command(root: &Path, command: &str) -> Result<CommandRun> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec 2>&1\n{command}"));
    crate::cargo::clean_env(&mut cmd);
    cmd.env(NESTED_ENV, "1").current_dir(root).stdin(Stdio::null()).stdout(Stdio::piped()).process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting `sh -c {command}`"))?;
    let mut stdout = child.stdout.take().context("the child has no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for a Try-it command")? {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let pgid = i32::try_from(child.id()).context("a process id beyond i32")?;
            // SAFETY: kill(2) on the process group this function created (process_group(0) made the
            // child its leader); it touches no memory of ours.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            break child.wait().context("waiting for a killed Try-it command")?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = reader.join().map_err(|_| anyhow::anyhow!("the output reader panicked"))?;
    Ok(CommandRun {
        output: String::from_utf8_lossy(&bytes).into_owned(),
        success: status.success(),
        timed_out,
        elapsed: start.elapsed(),
    })
}

/// The verdict of one block on its command's run.
pub fn judge(t: &TryIt, run: &CommandRun) -> std::result::Result<(), String> {
    if run.timed_out {
        return Err(format!("{}: `{}` did not finish in {} s", t.name(), t.command, TIMEOUT.as_secs()));
    }
    if run.success == t.must_fail {
        let (want, got) = if t.must_fail { ("fail", "passed") } else { ("pass", "failed") };
        let last = run.output.lines().last().unwrap_or("");
        return Err(format!("{}: `{}` must {want} but {got}; its last line: {last}", t.name(), t.command));
    }
    check_output(t, &run.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# A chapter\n\n```sh\nnot a try-it\n```\n\n**Try it.**\n\n```sh try\ncargo xtask run \\\n  --workload swap\n```\n\n```text expect\nswap: region 192 pages\n\nzipf ... mismatches 0\n```\n\n```sh try fails\nfalse\n```\n```text expect\nx\n```\n";

    #[test]
    fn blocks_are_found_with_their_lines() {
        let blocks = parse("docs/x.md", DOC).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            TryIt {
                file: "docs/x.md".into(),
                line: 9,
                command: "cargo xtask run --workload swap".into(),
                must_fail: false,
                expect: vec![(15, "swap: region 192 pages".into()), (17, "zipf ... mismatches 0".into())],
            }
        );
        assert_eq!(blocks[0].name(), "docs/x.md:9");
        assert!(blocks[1].must_fail);
        assert_eq!(blocks[1].command, "false");
    }

    #[test]
    fn malformed_blocks_are_errors_with_file_and_line() {
        let no_expect = "```sh try\nls\n```\n\ntext\n";
        let e = parse("d.md", no_expect).unwrap_err().to_string();
        assert_eq!(e, "d.md:1: a ```sh try block must be followed by a ```text expect block");
        let two = "```sh try\nls\nls\n```\n```text expect\na\n```\n";
        let e = parse("d.md", two).unwrap_err().to_string();
        assert_eq!(e, "d.md:1: the ```sh try block has 2 commands; a Try-it runs exactly one");
        let empty_expect = "```sh try\nls\n```\n```text expect\n\n```\n";
        let e = parse("d.md", empty_expect).unwrap_err().to_string();
        assert_eq!(e, "d.md:4: the expect block has no lines: a Try-it must check something");
        let unknown = "```sh try maybe\nls\n```\n";
        assert!(parse("d.md", unknown).unwrap_err().to_string().starts_with("d.md:1: unknown words"));
        let open = "```sh try\nls\n";
        assert_eq!(parse("d.md", open).unwrap_err().to_string(), "d.md:1: a ``` fence that is never closed");
    }

    #[test]
    fn a_longer_fence_hides_the_try_blocks_it_shows() {
        let doc = "````text\n```sh try\nfalse\n```\n```text expect\nx\n```\n````\n";
        assert_eq!(parse("d.md", doc).unwrap(), vec![]);
    }

    #[test]
    fn lines_match_as_substrings_with_gaps_and_squeezed_spaces() {
        let out = "  zipf       tmem-zsmalloc  I/O    470 (reads   237) | mismatches 0 | 307 ms";
        assert!(line_matches("zipf tmem-zsmalloc I/O 470", out));
        assert!(line_matches("zipf ... mismatches 0", out));
        assert!(line_matches("tmem-zsmalloc...I/O...ms", out));
        // Pieces must come in order, and a substring is not a regex.
        assert!(!line_matches("mismatches 0 ... zipf", out));
        assert!(!line_matches("I/O [0-9]+", out));
    }

    #[test]
    fn a_missing_expected_line_fails_and_names_file_command_and_line() {
        let t = &parse("docs/x.md", DOC).unwrap()[0];
        let good = "xtask: building\nswap: region 192 pages, memory 64\n  zipf   disk | mismatches 0 | 3 ms\n";
        assert_eq!(check_output(t, good), Ok(()));
        let missing = "swap: region 192 pages, memory 64\n  zipf   disk | mismatches 2 | 3 ms\n";
        assert_eq!(
            check_output(t, missing),
            Err("docs/x.md:17: `cargo xtask run --workload swap` printed no line matching \
                 `zipf ... mismatches 0` after output line 1 (2 lines of output)"
                .into())
        );
        // In order: the second expected line may not match above the first.
        let reversed = "  zipf   disk | mismatches 0 | 3 ms\nswap: region 192 pages, memory 64\n";
        assert!(check_output(t, reversed).is_err());
    }

    #[test]
    fn exit_status_and_timeouts_are_judged() {
        let blocks = parse("docs/x.md", DOC).unwrap();
        let out = |success, timed_out| CommandRun {
            output: "swap: region 192 pages\nzipf mismatches 0\nx\n".into(),
            success,
            timed_out,
            elapsed: Duration::ZERO,
        };
        assert_eq!(judge(&blocks[0], &out(true, false)), Ok(()));
        assert!(judge(&blocks[0], &out(false, false)).unwrap_err().contains("must pass but failed; its last line: x"));
        assert_eq!(judge(&blocks[1], &out(false, false)), Ok(()));
        assert!(judge(&blocks[1], &out(true, false)).unwrap_err().contains("must fail but passed"));
        assert!(judge(&blocks[0], &out(true, true)).unwrap_err().contains("did not finish in 300 s"));
    }

    #[test]
    fn a_command_runs_through_sh_with_stderr_and_status() {
        let r = run_command(Path::new("."), "echo out; echo err >&2; exit 3").unwrap();
        assert_eq!(r.output, "out\nerr\n");
        assert!(!r.success && !r.timed_out);
        let r = run_command(Path::new("."), &format!("echo ${NESTED_ENV}")).unwrap();
        assert_eq!((r.output.as_str(), r.success), ("1\n", true));
    }

    #[test]
    fn the_repository_docs_parse() {
        let blocks = collect(&crate::cargo::workspace_root()).unwrap();
        assert!(!blocks.is_empty(), "no Try-it block in README.md or docs/");
    }
}
