//! Calling cargo: the kernel and the test kernels for `x86_64-unknown-none`, host tests, metadata.
//!
//! What cargo prints for programs is read with the `cargo_metadata` crate's types: `cargo metadata`
//! as [`Metadata`], `cargo build --message-format json-render-diagnostics` as [`Message`]s (each
//! `compiler-artifact` of a binary gives a kernel ELF). The one free-form part, tests/Cargo.toml's
//! `[package.metadata.zkernel]`, is read into [`KernelTable`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, Metadata, MetadataCommand, Package};
use serde::Deserialize;

/// The kernel target; its `core`/`alloc` come precompiled with the pinned toolchain's `rustup target`.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// A `cargo` command for the workspace, with the environment the outer `cargo xtask` set removed
/// (as hermit's xtask does): inherited `CARGO_*`/`RUSTC*`/`RUSTFLAGS` would otherwise leak host
/// settings of the xtask build into the kernel build. `RUSTUP_TOOLCHAIN` stays: rustc runs with the
/// working directory of each crate it compiles, and a registry crate's directory has no
/// rust-toolchain.toml, so without it rustup would fall back to the default toolchain (or fail).
pub fn cargo() -> Command {
    let exe = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(exe);
    clean_env(&mut cmd);
    cmd.current_dir(workspace_root());
    cmd
}

/// Remove from `cmd`'s environment what the outer `cargo xtask` set (see [`cargo`]); the docs check
/// runs its `sh -c` commands with it, so a `cargo xtask …` inside one builds as from a terminal.
pub fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = matches!(key, "CARGO_HOME" | "CARGO_TARGET_DIR" | "CARGO_TERM_COLOR");
        let drop = (key == "CARGO" || key.starts_with("CARGO_"))
            || key.starts_with("RUSTC")
            || matches!(key, "RUSTFLAGS" | "RUSTDOC" | "RUSTDOCFLAGS");
        if drop && !keep {
            cmd.env_remove(key);
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// `cargo metadata` of the workspace (no dependencies), parsed by `cargo_metadata`. It runs through
/// [`cargo`] (not `MetadataCommand::exec`) so it sees the same cleaned environment as every other call.
pub fn metadata() -> Result<Metadata> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let text = std::str::from_utf8(&out.stdout).context("parsing cargo metadata")?;
    MetadataCommand::parse(text).context("parsing cargo metadata")
}

/// The target directory cargo uses.
pub fn target_dir(meta: &Metadata) -> PathBuf {
    meta.target_directory.clone().into_std_path_buf()
}

/// Build `package`'s binaries for the kernel target; returns binary name → ELF path. `quiet` hides
/// cargo's progress lines (errors and warnings still show).
pub fn build_kernel_bins(
    package: &str,
    release: bool,
    quiet: bool,
    extra: &[&str],
) -> Result<BTreeMap<String, PathBuf>> {
    let mut cmd = cargo();
    if quiet {
        cmd.arg("--quiet");
    }
    cmd.args(["build", "--package", package, "--bins", "--target", KERNEL_TARGET]);
    cmd.args(["--message-format", "json-render-diagnostics"]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(extra);
    cmd.env("CARGO_ENCODED_RUSTFLAGS", remap_flags(&path_prefixes()?).join("\x1f"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("running cargo build")?;
    let stdout = child.stdout.take().expect("piped");
    let bins = artifact_bins(BufReader::new(stdout))?;
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build --package {package} --target {KERNEL_TARGET} failed");
    }
    Ok(bins)
}

/// Where the paths a kernel image would name are, on this machine, and the fixed names they get in it.
///
/// A kernel ELF names source files: in its panic messages (`core`'s and the registry crates' generic
/// code, compiled into our crates, carries absolute paths) and in its debug information (every
/// compilation unit's directories). The bootloader loads the whole file, debug information included,
/// so the file's size decides how many frames are left to manage: with the paths as they are, a machine
/// whose cargo home or toolchain lives elsewhere boots with other frame counts (homes 2 and 3 bytes
/// shorter gave 2 frames more), and every figure that depends on managed memory moves with them.
/// Remapping the three prefixes makes a cold build the same bytes for the same sources and toolchain,
/// wherever they are (an incremental build can differ from a cold one by a few bytes). Workspace files are already relative (cargo passes them so); the root is
/// remapped for the debug information's compilation directory. `cargo xtask gdb` prints the
/// `set substitute-path` commands that map the names back.
pub struct PathPrefix {
    /// The real prefix on this machine.
    pub local: PathBuf,
    /// What the image says instead.
    pub image: String,
}

/// The three prefixes: the toolchain's `rust-src` (named as the precompiled `core` names itself,
/// `/rustc/<commit>`), cargo's home (the registry's sources) and the workspace.
pub fn path_prefixes() -> Result<Vec<PathPrefix>> {
    let rustc = |args: &[&str]| -> Result<String> {
        let mut cmd = Command::new("rustc");
        clean_env(&mut cmd);
        let out = cmd.args(args).current_dir(workspace_root()).output().context("running rustc")?;
        if !out.status.success() {
            bail!("rustc {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        String::from_utf8(out.stdout).context("rustc printed non-UTF-8")
    };
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?.trim());
    let version = rustc(&["-vV"])?;
    let Some(commit) = version.lines().find_map(|l| l.strip_prefix("commit-hash: ")) else {
        bail!("`rustc -vV` names no commit-hash, so the kernel's core paths cannot be named as core names them");
    };
    let cargo_home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cargo"),
            None => bail!("neither CARGO_HOME nor HOME is set, so cargo's registry cannot be found"),
        },
    };
    let mut prefixes = Vec::new();
    let mut add = |local: PathBuf, image: String| {
        // A symlinked prefix can reach rustc either way; name both.
        if let Ok(real) = local.canonicalize()
            && real != local
        {
            prefixes.push(PathPrefix { local: real, image: image.clone() });
        }
        prefixes.push(PathPrefix { local, image });
    };
    add(sysroot.join("lib/rustlib/src/rust"), format!("/rustc/{commit}"));
    add(cargo_home, "/cargo".to_string());
    add(workspace_root(), "/zkernel".to_string());
    Ok(prefixes)
}

/// rustc's `--remap-path-prefix` flags for `prefixes`.
pub fn remap_flags(prefixes: &[PathPrefix]) -> Vec<String> {
    prefixes.iter().map(|p| format!("--remap-path-prefix={}={}", p.local.display(), p.image)).collect()
}

/// The executables among the `compiler-artifact` messages of `cargo build --message-format json…`:
/// binary target name → path. Lines that are not cargo messages are passed over.
fn artifact_bins(stdout: impl BufRead) -> Result<BTreeMap<String, PathBuf>> {
    let mut bins = BTreeMap::new();
    for msg in Message::parse_stream(stdout) {
        if let Message::CompilerArtifact(a) = msg.context("reading cargo output")?
            && a.target.is_bin()
            && let Some(exe) = a.executable
        {
            bins.insert(a.target.name, exe.into_std_path_buf());
        }
    }
    Ok(bins)
}

/// The workspace's host packages: its default members (the kernel crates are not among them).
pub fn host_packages(meta: &Metadata) -> Vec<String> {
    if meta.workspace_default_members.is_missing() {
        return Vec::new(); // cargo older than 1.71 does not say
    }
    meta.workspace_default_packages().into_iter().map(|p| p.name.to_string()).collect()
}

/// A package's entry in the metadata.
pub fn package<'a>(meta: &'a Metadata, name: &str) -> Option<&'a Package> {
    meta.packages.iter().find(|p| p.name.as_str() == name)
}

/// The `[package.metadata.zkernel]` table of a package (tests/Cargo.toml has one): what `cargo xtask
/// test` and `bench` need to know about the test kernels beyond their `[[bin]]` targets. Every key may
/// be left out.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct KernelTable {
    /// Harness checks: kernel name → the failure key it must be judged with.
    pub harness_checks: BTreeMap<String, String>,
    /// Per-kernel timeouts in seconds.
    pub timeouts: BTreeMap<String, u64>,
    /// Benchmark kernels (`cargo xtask bench` runs them; `test` leaves them out).
    pub benches: Vec<String>,
    /// Per-kernel page files (paths relative to the workspace root) handed over as ramdisks.
    pub ramdisks: BTreeMap<String, String>,
    /// Per-kernel CPU counts (QEMU `-smp`); kernels not listed get the default of `QemuConfig`.
    pub smp: BTreeMap<String, u32>,
    /// Kernels booted with multi-threaded TCG said explicitly (`-accel tcg,thread=multi`): the SMP
    /// benchmark. Every other kernel keeps plain `-accel tcg`.
    pub multi_threaded_tcg: Vec<String>,
}

/// `package`'s [`KernelTable`]; empty when the package or its table is absent, an error naming the
/// package when the table does not have the expected shape.
pub fn kernel_table(meta: &Metadata, package_name: &str) -> Result<KernelTable> {
    let Some(table) = package(meta, package_name).and_then(|p| p.metadata.get("zkernel")) else {
        return Ok(KernelTable::default());
    };
    KernelTable::deserialize(table).with_context(|| format!("[package.metadata.zkernel] of package {package_name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_binary_artifacts_with_an_executable_are_kept() {
        let lib = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/k#0.1.0","manifest_path":"/w/k/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"k","src_path":"/w/k/src/lib.rs","edition":"2024","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/t/libk.rlib"],"executable":null,"fresh":true}"#;
        let bin = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/k#0.1.0","manifest_path":"/w/k/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"zkernel","src_path":"/w/k/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/t/zkernel"],"executable":"/t/zkernel","fresh":false}"#;
        let done = r#"{"reason":"build-finished","success":true}"#;
        let out = format!("{lib}\nnot json\n{bin}\n{done}\n");
        let bins = artifact_bins(out.as_bytes()).unwrap();
        assert_eq!(bins.into_iter().collect::<Vec<_>>(), [("zkernel".to_string(), PathBuf::from("/t/zkernel"))]);
    }

    #[test]
    fn the_kernel_table_is_typed() {
        let v = serde_json::json!({
            "harness-checks": { "fail_exit": "kernel-failed" },
            "timeouts": { "fail_hang": 15 },
            "benches": ["bench_mm"],
            "multi-threaded-tcg": ["bench_smp"],
        });
        let t = KernelTable::deserialize(&v).unwrap();
        assert_eq!(t.harness_checks["fail_exit"], "kernel-failed");
        assert_eq!((t.timeouts["fail_hang"], t.benches.as_slice()), (15, &["bench_mm".to_string()][..]));
        assert!(t.ramdisks.is_empty() && t.smp.is_empty());
        assert_eq!(t.multi_threaded_tcg, ["bench_smp"]);
        assert!(KernelTable::deserialize(&serde_json::json!({})).unwrap().multi_threaded_tcg.is_empty());
        let bad = serde_json::json!({ "timeouts": { "fail_hang": "soon" } });
        assert!(KernelTable::deserialize(&bad).is_err());
    }
}
