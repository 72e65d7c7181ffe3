//! Calling cargo: the kernel and the test kernels for `x86_64-unknown-none`, host tests, metadata.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

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
    cmd.current_dir(workspace_root());
    cmd
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// `cargo metadata` of the workspace (no dependencies).
pub fn metadata() -> Result<Value, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err("cargo metadata failed".into());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("parsing cargo metadata: {e}"))
}

/// The target directory cargo uses.
pub fn target_dir(meta: &Value) -> PathBuf {
    meta["target_directory"].as_str().map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Build `package`'s binaries for the kernel target; returns binary name → ELF path. `quiet` hides
/// cargo's progress lines (errors and warnings still show).
pub fn build_kernel_bins(
    package: &str,
    release: bool,
    quiet: bool,
    extra: &[&str],
) -> Result<BTreeMap<String, PathBuf>, String> {
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
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("running cargo build: {e}"))?;
    let mut bins = BTreeMap::new();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo output: {e}"))?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bin = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|x| x == "bin"));
        if let (true, Some(exe), Some(name)) = (is_bin, msg["executable"].as_str(), msg["target"]["name"].as_str()) {
            bins.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --package {package} --target {KERNEL_TARGET} failed"));
    }
    Ok(bins)
}

/// The workspace's host packages: its default members (the kernel crates are not among them).
pub fn host_packages(meta: &Value) -> Vec<String> {
    let ids: Vec<&str> =
        meta["workspace_default_members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| ids.contains(&id)))
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

/// A package's entry in the metadata.
pub fn package<'a>(meta: &'a Value, name: &str) -> Option<&'a Value> {
    meta["packages"].as_array()?.iter().find(|p| p["name"] == name)
}
