//! `cargo xtask fuzz [TARGET] [--time S] [--runs N]`: run the cargo-fuzz targets of `fuzz/` for a bounded
//! time each and report what libFuzzer found.
//!
//! # Why
//!
//! The parsers (fsimage, kopts, the page-file reader `pagefile`), the stored-page decoder and the pools'
//! handle checks promise "a typed error, never a panic" for *any* input; unit tests try the inputs we thought of, libFuzzer the ones we
//! did not. cargo-fuzz builds and runs the targets but runs until a crash by default and prints a
//! screenful per second; this command gives them a time budget, runs one or all, and boils each run
//! down to three numbers and a verdict, so CI can run every target for a few seconds and fail on a crash.
//!
//! # Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | target | a `[[bin]]` of `fuzz/Cargo.toml` (package `zkernel-fuzz`), one `fuzz/fuzz_targets/NAME.rs`; the list is read from there, so a new target needs no change here (its seeds go in `fuzz/src/seeds.rs`, whose test checks the two lists agree) |
//! | seeds | `fuzz/corpus/NAME/`: small committed inputs libFuzzer starts from (made by `fuzz/src/seeds.rs`) |
//! | work corpus | `target/zkernel/fuzz/corpus/NAME/`: where libFuzzer keeps the inputs it found (never committed) |
//! | regressions | `fuzz/regressions/NAME/`: inputs that once crashed; replayed first on every run |
//! | executions | inputs run (libFuzzer's `stat::number_of_executed_units`) |
//! | cov | code edges covered (the `cov:` of libFuzzer's last status line) |
//! | artifact | the input libFuzzer saved when the target crashed (`fuzz/artifacts/NAME/crash-…`) |
//!
//! # Layout: the command it runs, and what it reads back
//!
//! ```text
//!   cargo fuzz run -O -a [-s none] NAME  <work corpus> fuzz/corpus/NAME [fuzz/regressions/NAME]
//!                  -- -max_total_time=S [-runs=N] -print_final_stats=1
//!
//!   #3526   DONE   cov: 933 ft: 2631 corp: 287/37Kb lim: 431 exec/s: 881 rss: 89Mb   → cov 933, ft 2631
//!   stat::number_of_executed_units: 3526                                              → executions
//!   ... Test unit written to fuzz/artifacts/NAME/crash-<sha1>                          → the crash
//! ```
//!
//! `-O -a`: optimised, with debug assertions and overflow checks (our code's `debug_assert!`s and
//! arithmetic overflow are bugs we want found); AddressSanitizer is cargo-fuzz's default, and `--no-asan`
//! (`-s none`) leaves it out: the fuzzed crates forbid `unsafe`, so ASan has little to add, and CI's
//! short run saves most of its build. libFuzzer
//! writes new inputs into the *first* corpus directory only, so the committed seeds stay as they are.
//! Each target is built by cargo-fuzz in its own target directory, `fuzz/target` (`CARGO_TARGET_DIR` is
//! not passed on: cargo-fuzz must find the binaries where it put them).
//!
//! # Worked example
//!
//! `cargo xtask fuzz kopts_parse --time 20` runs one target for 20 s and prints
//!
//! ```text
//! target                 executions   cov     ft  result
//! kopts_parse                 18342   941   2710  ok
//! ```
//!
//! A crash instead prints the panic message, the artifact path and how to replay it, and the command
//! fails; the input goes to `fuzz/regressions/NAME/` once understood (fuzz/README.md).
//!
//! # Contracts
//!
//! - cargo-fuzz missing is an error naming the install command; an unknown target is an error listing
//!   the targets.
//! - Every target runs even after another crashed; the command fails if any crashed or could not run.
//! - The parsing of libFuzzer's output ([`parse_output`]) is pure and unit-tested on captured lines.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use cargo_metadata::MetadataCommand;
use clap::Args;

use crate::cargo;

/// The fuzz crate's directory and package name.
const FUZZ_DIR: &str = "fuzz";
const FUZZ_PACKAGE: &str = "zkernel-fuzz";

#[derive(Args, Clone, Debug)]
pub struct FuzzOpts {
    /// The target to run (a `[[bin]]` of fuzz/Cargo.toml); every target, one after the other, if omitted.
    target: Option<String>,
    /// Seconds to fuzz each target (libFuzzer's `-max_total_time`).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    time: u64,
    /// Also stop each target after this many inputs (libFuzzer's `-runs`).
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
    /// Build without AddressSanitizer (`cargo fuzz run -s none`): our fuzzed crates forbid `unsafe`, so a
    /// panic is what a crash looks like, and the build takes far less time. CI uses it.
    #[arg(long)]
    no_asan: bool,
}

/// What one libFuzzer run reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Inputs executed (`stat::number_of_executed_units`, else the `#N` of the last status line).
    pub executions: Option<u64>,
    /// Edges covered (`cov:` of the last status line).
    pub cov: Option<u64>,
    /// Features (`ft:` of the last status line).
    pub features: Option<u64>,
    /// The saved crashing input (`Test unit written to PATH`), if the target crashed.
    pub artifact: Option<String>,
    /// The first line of the panic (`panicked at …`) or sanitizer report (`ERROR: …`), and the panic's
    /// message line after it.
    pub failure: Option<String>,
}

/// The number after `key` (`cov:`, `ft:`) in a libFuzzer status line.
fn field(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.by_ref().find(|w| *w == key)?;
    words.next()?.parse().ok()
}

/// Read a libFuzzer run's output (its stderr; cargo-fuzz's own lines may be mixed in).
pub fn parse_output(text: &str) -> FuzzReport {
    let mut r = FuzzReport::default();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end();
        // Status lines: `#1234\tNEW    cov: 12 ft: 34 …`, `#1234\tDONE   cov: …`.
        if let Some(rest) = line.strip_prefix('#')
            && let Some((count, tail)) = rest.split_once(char::is_whitespace)
            && let Ok(count) = count.parse::<u64>()
        {
            if let Some(cov) = field(tail, "cov:") {
                r.cov = Some(cov);
                r.features = field(tail, "ft:").or(r.features);
                r.executions = Some(count);
            }
        } else if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            if let Ok(n) = n.trim().parse() {
                r.executions = Some(n);
            }
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            r.artifact = Some(path.trim().to_string());
        } else if r.failure.is_none() && (line.contains("panicked at ") || line.contains("ERROR: ")) {
            let mut what = line.trim_start_matches(|c: char| c == '=' || c.is_ascii_digit()).trim().to_string();
            // Rust prints `thread '…' panicked at file:line:col:` and the message on the next line.
            if line.contains("panicked at ")
                && let Some(next) = lines.get(i + 1)
            {
                what = format!("{what} {}", next.trim());
            }
            r.failure = Some(what);
        }
    }
    r
}

/// The fuzz targets: the binaries of `fuzz/Cargo.toml`, from `cargo metadata` of that manifest.
fn targets(root: &Path) -> Result<Vec<String>> {
    let manifest = root.join(FUZZ_DIR).join("Cargo.toml");
    // Through `cargo::cargo()`, like `cargo::metadata`, so it sees the same cleaned environment.
    let out = cargo::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo metadata of {}", manifest.display()))?;
    if !out.status.success() {
        bail!("cargo metadata of {} failed", manifest.display());
    }
    let text = std::str::from_utf8(&out.stdout).context("cargo metadata printed something other than UTF-8")?;
    let meta =
        MetadataCommand::parse(text).with_context(|| format!("parsing cargo metadata of {}", manifest.display()))?;
    let package = meta
        .packages
        .iter()
        .find(|p| p.name.as_str() == FUZZ_PACKAGE)
        .with_context(|| format!("{} has no package {FUZZ_PACKAGE}", manifest.display()))?;
    let mut bins: Vec<String> = package.targets.iter().filter(|t| t.is_bin()).map(|t| t.name.clone()).collect();
    bins.sort();
    Ok(bins)
}

/// Fail with the install command unless `cargo fuzz` runs.
fn check_cargo_fuzz() -> Result<()> {
    let ok = cargo::cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!("cargo-fuzz is not installed; install it with `cargo install cargo-fuzz --locked`");
    }
    Ok(())
}

/// `cargo fuzz run` for one target, output captured.
fn run_target(root: &Path, work: &Path, target: &str, o: &FuzzOpts) -> Result<(FuzzReport, String, bool)> {
    let seeds = root.join(FUZZ_DIR).join("corpus").join(target);
    let regressions = root.join(FUZZ_DIR).join("regressions").join(target);
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let mut cmd: Command = cargo::cargo();
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd.args(["fuzz", "run", "-O", "-a"]);
    if o.no_asan {
        cmd.args(["-s", "none"]);
    }
    cmd.arg(target).arg(work);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    if regressions.is_dir() {
        cmd.arg(&regressions);
    }
    cmd.args(["--", &format!("-max_total_time={}", o.time), "-print_final_stats=1"]);
    if let Some(n) = o.runs {
        cmd.arg(format!("-runs={n}"));
    }
    let out = cmd.output().context("running cargo fuzz")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((parse_output(&text), text, out.status.success()))
}

fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

pub fn fuzz(o: &FuzzOpts) -> Result<ExitCode> {
    check_cargo_fuzz()?;
    let root = cargo::workspace_root();
    let all = targets(&root)?;
    let chosen: Vec<String> = match &o.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}`; the targets are: {}", all.join(", ")),
        None => all,
    };
    let meta = cargo::metadata()?;
    let work_root: PathBuf = cargo::target_dir(&meta).join("zkernel").join("fuzz").join("corpus");
    let mut rows = Vec::new();
    let mut failed = 0;
    for target in &chosen {
        eprintln!("xtask: fuzzing {target} for {} s …", o.time);
        let (report, text, success) = run_target(&root, &work_root.join(target), target, o)?;
        let verdict = match (&report.artifact, success) {
            (None, true) => "ok".to_string(),
            (Some(artifact), _) => {
                failed += 1;
                eprintln!("xtask: {target} CRASHED: {}", report.failure.as_deref().unwrap_or("(no message)"));
                eprintln!("xtask:   input: {artifact}");
                eprintln!("xtask:   replay: cargo fuzz run -O -a {target} {artifact}");
                format!("CRASH {artifact}")
            }
            (None, false) => {
                failed += 1;
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                for line in tail.into_iter().rev() {
                    eprintln!("  | {line}");
                }
                "FAILED (see the output above)".to_string()
            }
        };
        rows.push((target.clone(), report, verdict));
    }
    println!("{:<22} {:>12} {:>6} {:>7}  result", "target", "executions", "cov", "ft");
    for (target, r, verdict) in &rows {
        println!("{target:<22} {:>12} {:>6} {:>7}  {verdict}", show(r.executions), show(r.cov), show(r.features));
    }
    if failed > 0 {
        bail!(
            "{failed} of {} fuzz target(s) failed; a crash's input goes to fuzz/regressions/TARGET/ once it is understood",
            rows.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of a clean 5-second run of `kopts_parse`, as libFuzzer printed it.
    const CLEAN: &str = "\
INFO: Running with entropic power schedule (0xFF, 100).
INFO: Seed: 2894987428
#334\tINITED cov: 918 ft: 2577 corp: 262/33Kb exec/s: 0 rss: 51Mb
#2048\tpulse  cov: 931 ft: 2620 corp: 278/35Kb lim: 431 exec/s: 1024 rss: 72Mb
#3451\tNEW    cov: 933 ft: 2629 corp: 286/37Kb lim: 431 exec/s: 862 rss: 88Mb L: 41/431 MS: 2 ChangeBit-CMP- DE: \"tmem\"-
#3526\tDONE   cov: 933 ft: 2631 corp: 287/37Kb lim: 431 exec/s: 881 rss: 89Mb
###### Recommended dictionary. ######
\"tmem\" # Uses: 4
###### End of recommended dictionary. ######
Done 3526 runs in 4 second(s)
stat::number_of_executed_units: 3526
stat::average_exec_per_sec:     881
stat::new_units_added:          413
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              117
";

    /// A panicking target: Rust's panic message, libFuzzer's deadly-signal report, the saved input.
    const CRASH: &str = "\
#1021\tNEW    cov: 2469 ft: 7206 corp: 160/50Kb lim: 1274 exec/s: 0 rss: 71Mb L: 12/1274 MS: 1 ChangeBit-

thread '<unnamed>' panicked at fuzz_targets/tmem_model.rs:180:25:
assertion `left == right` failed: Key { pool: PoolId(0), oid: 1, index: 2 }: get of a held page
==4242== ERROR: libFuzzer: deadly signal
stat::number_of_executed_units: 1187
stat::peak_rss_mb:              71
MS: 1 ChangeBit-; base unit: 0123456789abcdef0123456789abcdef01234567
artifact_prefix='/work/main/fuzz/artifacts/tmem_model/'; Test unit written to /work/main/fuzz/artifacts/tmem_model/crash-5d1e1b4c9b2d1f0e0a0b0c0d0e0f101112131415
Base64: AAECAw==
";

    /// A leak found by LeakSanitizer at exit (no status line after the leak).
    const LEAK: &str = "\
#224\tDONE   cov: 2469 ft: 7206 corp: 160/50Kb lim: 1274 exec/s: 0 rss: 71Mb
Done 224 runs in 0 second(s)
=================================================================
==2655==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 12288 byte(s) in 1 object(s) allocated from:
SUMMARY: AddressSanitizer: 12288 byte(s) leaked in 1 allocation(s).
artifact_prefix='/work/main/fuzz/artifacts/tmem_model/'; Test unit written to /work/main/fuzz/artifacts/tmem_model/crash-da39a3ee5e6b4b0d3255bfef95601890afd80709
";

    #[test]
    fn a_clean_run_gives_its_figures_and_no_crash() {
        assert_eq!(
            parse_output(CLEAN),
            FuzzReport { executions: Some(3526), cov: Some(933), features: Some(2631), artifact: None, failure: None }
        );
    }

    #[test]
    fn a_panic_gives_its_message_and_artifact() {
        let r = parse_output(CRASH);
        assert_eq!(r.executions, Some(1187));
        assert_eq!((r.cov, r.features), (Some(2469), Some(7206)));
        assert_eq!(
            r.artifact.as_deref(),
            Some("/work/main/fuzz/artifacts/tmem_model/crash-5d1e1b4c9b2d1f0e0a0b0c0d0e0f101112131415")
        );
        assert_eq!(
            r.failure.as_deref(),
            Some(
                "thread '<unnamed>' panicked at fuzz_targets/tmem_model.rs:180:25: assertion `left == right` \
                 failed: Key { pool: PoolId(0), oid: 1, index: 2 }: get of a held page"
            )
        );
    }

    #[test]
    fn a_leak_report_is_a_failure_with_its_artifact() {
        let r = parse_output(LEAK);
        assert_eq!(r.executions, Some(224), "the last status line's count when no stats follow");
        assert_eq!(r.failure.as_deref(), Some("ERROR: LeakSanitizer: detected memory leaks"));
        assert!(r.artifact.as_deref().is_some_and(|a| a.ends_with("crash-da39a3ee5e6b4b0d3255bfef95601890afd80709")));
    }

    #[test]
    fn output_without_status_lines_has_no_figures() {
        let r = parse_output("error: no such command: `fuzz`\n");
        assert_eq!(r, FuzzReport::default());
    }

    #[test]
    fn fields_are_read_by_name() {
        let line = "DONE   cov: 933 ft: 2631 corp: 287/37Kb";
        assert_eq!((field(line, "cov:"), field(line, "ft:")), (Some(933), Some(2631)));
        assert_eq!(field(line, "rss:"), None);
        assert_eq!(field("cov: many", "cov:"), None);
    }
}
