//! Running QEMU: prerequisites, the disks every run gets, a timeout on every run, and the serial output
//! as lines.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

pub const QEMU: &str = "qemu-system-x86_64";

/// Debian packages that provide QEMU and OVMF.
const QEMU_PACKAGE: &str = "qemu-system-x86";
const OVMF_PACKAGE: &str = "ovmf";

fn qemu_works() -> bool {
    Command::new(QEMU).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Make sure QEMU (and OVMF for UEFI) are there: install them with apt-get when running as root on a
/// Debian-like system, otherwise stop with the exact command to run. Returns the OVMF path for UEFI.
pub fn ensure_prerequisites(uefi: bool) -> Result<Option<PathBuf>> {
    let mut missing = Vec::new();
    if !qemu_works() {
        missing.push(QEMU_PACKAGE);
    }
    if uefi && boot::find_ovmf().is_none() {
        missing.push(OVMF_PACKAGE);
    }
    if !missing.is_empty() {
        let install = format!("apt-get install -y {}", missing.join(" "));
        if is_root() && have("apt-get") {
            eprintln!("xtask: {} missing; running `apt-get update && {install}`", missing.join(" and "));
            let run = |args: &[&str]| {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let ok = run(&["update", "-qq"]) && run(&[&["install", "-y", "-qq"][..], &missing].concat());
            if !ok {
                bail!(
                    "installing {} with apt-get failed; run `sudo apt-get update && sudo {install}`",
                    missing.join(" ")
                );
            }
        } else {
            bail!(
                "{} is not installed. Install it with:\n    sudo apt-get update && sudo {install}",
                missing.join(" and ")
            );
        }
        if !qemu_works() {
            bail!("{QEMU} still does not run after installing {QEMU_PACKAGE}");
        }
    }
    if uefi {
        return boot::find_ovmf()
            .map(Some)
            .ok_or_else(|| anyhow!("OVMF.fd not found in any of {:?}", boot::OVMF_CANDIDATES));
    }
    Ok(None)
}

/// Size of the swap disk every run gets, unless `cargo xtask run --swap-mib` says otherwise.
pub const SWAP_MIB: u64 = 64;

/// A fresh, all-zero swap disk for one run of `kernel`: `target/zkernel/disks/<kernel>-swap.img`,
/// attached with serial `swap`. The file is truncated and extended with `set_len`, so it is sparse:
/// making it costs nothing whatever its size. Each kernel has its own file, so test kernels running in
/// parallel never share a disk.
pub fn swap_disk(target: &Path, kernel: &str, mib: u64) -> Result<boot::VirtioDisk> {
    let dir = target.join("zkernel").join("disks");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{kernel}-swap.img"));
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(mib << 20).with_context(|| format!("sizing {} to {mib} MiB", path.display()))?;
    Ok(boot::VirtioDisk::new("swap", path))
}

/// What one QEMU run produced.
#[derive(Debug)]
pub struct Run {
    pub status: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// Serial output, one entry per line, `\r` removed.
    pub lines: Vec<String>,
    pub stderr: String,
}

/// What the guest's serial port receives (QEMU's stdin, `-serial stdio`).
#[derive(Debug, Clone)]
pub enum Input {
    /// Nothing: stdin is `/dev/null`.
    None,
    /// This terminal (`cargo xtask run --shell`): QEMU puts it in raw mode, every key reaches the guest,
    /// and the guest's output is passed through byte by byte (a prompt has no newline).
    Terminal,
    /// These lines, one each time the guest's serial output ends in `prompt` (`--script FILE`): a
    /// lesson replayed exactly as if typed, never ahead of the shell.
    Script { prompt: String, lines: Vec<String> },
}

/// What the stdout reader hands the main loop.
enum Out {
    Line(String),
    /// The output so far ends in the prompt, with nothing after it: the guest waits for a line.
    Prompt,
}

/// Run QEMU with `args`, killing it after `timeout`. Each serial line is passed to `on_line` as it
/// arrives (to echo it live); all lines are also returned.
pub fn run(args: &[String], timeout: Duration, on_line: impl FnMut(&str)) -> Result<Run> {
    run_with_input(args, timeout, Input::None, on_line)
}

/// [`run`], with `input` fed to the guest's serial port.
pub fn run_with_input(args: &[String], timeout: Duration, input: Input, mut on_line: impl FnMut(&str)) -> Result<Run> {
    let start = Instant::now();
    let mut child = Command::new(QEMU)
        .args(args)
        .stdin(match input {
            Input::None => Stdio::null(),
            Input::Terminal => Stdio::inherit(),
            Input::Script { .. } => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;

    let (tx, rx) = mpsc::channel::<Out>();
    let stdout = child.stdout.take().expect("piped");
    let pass_through = matches!(input, Input::Terminal);
    let prompt = match &input {
        Input::Script { prompt, .. } => Some(prompt.clone()),
        _ => None,
    };
    let mut stdin = child.stdin.take();
    let mut script = match input {
        Input::Script { lines, .. } => lines.into_iter(),
        _ => Vec::new().into_iter(),
    };
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if pass_through {
                let mut out = std::io::stdout();
                let _ = out.write_all(&chunk[..n]);
                let _ = out.flush();
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).replace('\r', "");
                if tx.send(Out::Line(line)).is_err() {
                    return;
                }
            }
            if let Some(p) = &prompt
                && pending.ends_with(p.as_bytes())
                && String::from_utf8_lossy(&pending).replace('\r', "") == *p
                && tx.send(Out::Prompt).is_err()
            {
                return;
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(Out::Line(String::from_utf8_lossy(&pending).replace('\r', "")));
        }
    });
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });

    let mut lines = Vec::new();
    let mut timed_out = false;
    let status = loop {
        while let Ok(out) = rx.try_recv() {
            match out {
                Out::Line(line) => {
                    on_line(&line);
                    lines.push(line);
                }
                // The next line of the script, as if typed: the shell echoes it after its prompt.
                Out::Prompt => {
                    if let (Some(next), Some(pipe)) = (script.next(), stdin.as_mut()) {
                        let _ = pipe.write_all(format!("{next}\n").as_bytes());
                        let _ = pipe.flush();
                    }
                }
            }
        }
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            break status;
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let status = child.wait().context("waiting for QEMU")?;
            // QEMU may have exited on its own between the last poll and the kill: then its status
            // stands. Only a QEMU our kill ended (no exit code) timed out.
            timed_out = status.code().is_none();
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin);
    let _ = reader.join();
    for out in rx.try_iter() {
        if let Out::Line(line) = out {
            on_line(&line);
            lines.push(line);
        }
    }
    let _ = std::io::stdout().flush();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Run { status: status.code(), timed_out, elapsed: start.elapsed(), lines, stderr })
}
