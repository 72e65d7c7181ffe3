//! `cargo xtask mutants [CRATE] [--shard K/N]`: mutation testing of the host crates with cargo-mutants,
//! and one line per crate of what it found (docs/mutation.md).
//!
//! # Why
//!
//! A test suite that passes proves only that it did not notice anything. cargo-mutants changes one thing
//! at a time in a crate (a `+` into `-`, a function body into `Default::default()`, a match arm deleted),
//! builds it and runs the crate's tests: a *caught* mutant failed a test, a *missed* one passed them all
//! — a line the tests would not miss if it were wrong. This command runs it the way docs/mutation.md's
//! table was made, so the figures can be reproduced and compared.
//!
//! # Vocabulary (cargo-mutants')
//!
//! | term | meaning |
//! |---|---|
//! | caught | a test failed with the mutant in place |
//! | missed | every test passed: the mutant survived |
//! | unviable | the mutant does not compile (not counted) |
//! | timeout | the tests ran longer than `--timeout` (an endless loop: the mutant was noticed, not caught) |
//! | score | caught / (caught + missed) |
//!
//! # What it runs
//!
//! ```text
//!   cargo mutants -p CRATE --profile mutants [--sharding round-robin --shard K/N] -j J --timeout S
//!                 -o target/zkernel/mutants/CRATE [-- -- SKIPS]
//!   then reads target/zkernel/mutants/CRATE/mutants.out/outcomes.json:
//!   crate      total  caught  missed  unviable  timeout  score
//!   zbud          92      71       4        17        0  94.7%
//! ```
//!
//! The `mutants` profile (workspace Cargo.toml) is optimised with debug assertions and overflow checks
//! on. cargo-mutants copies the tree to a scratch directory and builds there, so the worktree stays
//! usable. `SKIPS` leaves out repeats of a model test with other seeds, which cost seconds per mutant
//! ([`SKIPS`]).
//!
//! # Contracts
//!
//! - cargo-mutants missing is an error naming the install command; an unknown crate an error listing them.
//! - The command fails if any mutant was missed (or cargo-mutants failed otherwise); the table is printed
//!   first either way.

use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

use crate::cargo;

/// The crates, in the order of the issue: the ones a lost page would come from first.
const CRATES: [&str; 8] = ["frame", "zbud", "zsmalloc", "tmem", "zstore", "zpool", "compress", "swap"];

/// Test-binary arguments per crate: frame's model test runs four seeds of 10^5 operations, ~10 s each
/// unoptimised; mutants are judged by seed 1 and the unit tests (docs/mutation.md says so with the table).
const SKIPS: [(&str, &[&str]); 1] =
    [("frame", &["--skip", "model_seed_2", "--skip", "model_seed_3", "--skip", "model_seed_4"])];

#[derive(Args, Clone, Debug)]
pub struct MutantsOpts {
    /// One crate (frame, zbud, zsmalloc, tmem, zstore, zpool, compress, swap); all of them in turn if omitted.
    #[arg(value_name = "CRATE")]
    krate: Option<String>,
    /// Only shard K of N (cargo-mutants' `--shard`, round-robin: every Nth mutant).
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Seconds before a mutant's tests are called a timeout.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    timeout: u64,
    /// Mutants built and tested at once.
    #[arg(long, short, default_value_t = 1)]
    jobs: u32,
}

/// The summary of cargo-mutants' `outcomes.json`.
#[derive(Deserialize, Debug)]
struct Outcomes {
    total_mutants: u64,
    caught: u64,
    missed: u64,
    unviable: u64,
    timeout: u64,
}

fn check_cargo_mutants() -> Result<()> {
    let ok = cargo::cargo()
        .args(["mutants", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!("cargo-mutants is not installed; install it with `cargo install cargo-mutants`");
    }
    Ok(())
}

fn read_outcomes(out: &Path) -> Result<Outcomes> {
    let path = out.join("mutants.out").join("outcomes.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One table row; the score is caught / (caught + missed).
fn row(krate: &str, o: &Outcomes) -> String {
    let judged = o.caught + o.missed;
    let score = if judged == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * o.caught as f64 / judged as f64) };
    format!(
        "{krate:<10} {:>6} {:>7} {:>7} {:>9} {:>8}  {score}",
        o.total_mutants, o.caught, o.missed, o.unviable, o.timeout
    )
}

/// The arguments of `cargo mutants` up to `-o` (the output directory follows). `--sharding` only comes
/// with `--shard`: cargo-mutants refuses it alone, so a whole run has neither.
fn mutants_args(krate: &str, o: &MutantsOpts) -> Vec<String> {
    let mut args: Vec<String> = ["mutants", "-p", krate, "--profile", "mutants"].map(String::from).to_vec();
    if let Some(shard) = &o.shard {
        args.extend(["--sharding", "round-robin", "--shard", shard].map(String::from));
    }
    args.extend([
        "-j".to_string(),
        o.jobs.to_string(),
        "--timeout".to_string(),
        o.timeout.to_string(),
        "-o".to_string(),
    ]);
    args
}

pub fn mutants(o: &MutantsOpts) -> Result<ExitCode> {
    check_cargo_mutants()?;
    let chosen: Vec<&str> = match o.krate.as_deref() {
        None => CRATES.to_vec(),
        Some(k) if CRATES.contains(&k) => vec![k],
        Some(k) => bail!("unknown crate {k:?}; the crates are: {}", CRATES.join(", ")),
    };
    let meta = cargo::metadata()?;
    let base = cargo::target_dir(&meta).join("zkernel").join("mutants");
    let mut rows = Vec::new();
    let mut failed = false;
    for krate in chosen {
        let out = base.join(krate);
        // cargo-mutants creates `out` itself but not the directories above it.
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let mut cmd = cargo::cargo();
        cmd.args(mutants_args(krate, o)).arg(&out);
        if let Some((_, skips)) = SKIPS.iter().find(|(k, _)| *k == krate) {
            cmd.args(["--", "--"]).args(*skips);
        }
        println!("mutants: {krate}");
        let status = cmd.status().context("running cargo mutants")?;
        let outcomes = read_outcomes(&out)?;
        failed |= !status.success();
        rows.push(row(krate, &outcomes));
    }
    println!("\ncrate       total  caught  missed  unviable  timeout  score");
    for r in &rows {
        println!("{r}");
    }
    if failed {
        println!("mutants: missed mutants (or a failed run); see target/zkernel/mutants/CRATE/mutants.out/missed.txt");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_the_score_of_the_judged_mutants() {
        let o = Outcomes { total_mutants: 92, caught: 71, missed: 4, unviable: 17, timeout: 0 };
        assert_eq!(row("zbud", &o), "zbud           92      71       4        17        0  94.7%");
        let none = Outcomes { total_mutants: 1, caught: 0, missed: 0, unviable: 1, timeout: 0 };
        assert!(row("x", &none).ends_with("  -"));
    }

    /// A whole run passes no `--sharding`, which cargo-mutants refuses without `--shard`.
    #[test]
    fn sharding_is_passed_only_with_a_shard() {
        let mut o = MutantsOpts { krate: None, shard: None, timeout: 120, jobs: 1 };
        assert_eq!(mutants_args("swap", &o).join(" "), "mutants -p swap --profile mutants -j 1 --timeout 120 -o");
        o.shard = Some("1/3".to_string());
        assert_eq!(
            mutants_args("frame", &o).join(" "),
            "mutants -p frame --profile mutants --sharding round-robin --shard 1/3 -j 1 --timeout 120 -o"
        );
    }

    #[test]
    fn outcomes_json_is_read_as_cargo_mutants_writes_it() {
        let text = r#"{"total_mutants":82,"missed":5,"caught":70,"timeout":1,"unviable":6,"success":0,
            "start_time":"2026-11-30T15:03:33Z","end_time":"2026-11-30T15:12:21Z","cargo_mutants_version":"27.1.0",
            "outcomes":[]}"#;
        let o: Outcomes = serde_json::from_str(text).unwrap();
        assert_eq!((o.total_mutants, o.caught, o.missed, o.unviable, o.timeout), (82, 70, 5, 6, 1));
    }
}
