//! `cargo xtask screenshot`: boot a run and save the kernel's live memory picture as a PNG, through
//! QEMU's monitor (QMP `screendump`).
//!
//! | step | what |
//! |---|---|
//! | 1 | prepare the run as `cargo xtask run` does (default `--workload swap`), plus `-qmp unix:SOCKET,server=on,wait=off` |
//! | 2 | wait for the moment: `--at SECS` after QEMU started, or else the first `picture: … screenshot point` line of a run with a pool (the middle of the `tmem-…` run; `workload::picture` prints it) |
//! | 3 | over QMP: `stop` (the guest holds still), `screendump` with `format: png` (QEMU ≥ 7.1), `cont` |
//! | 4 | let the run finish and judge it as `run` does; then read the PNG back and count the owner colours inside the map, whose place the kernel printed (`picture: … map at (x,y) WxH`) |
//!
//! The PNG is `target/zkernel/screenshot.png` unless `--out FILE` says otherwise. The run check
//! `run_screenshot_swap` calls [`take`] and holds the PNG to its size and to more than
//! [`MIN_OWNER_COLOURS`] owner colours in the map.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use mempic::{Category, Rect, Rgb};

use crate::{RunOpts, Workload, cargo, prepare_run, qemu, verdict};

/// A swap run's picture must show more owner colours than this in its map: free, not managed, kernel,
/// page tables, DMA, workload resident and zsmalloc are all there at the middle of the tmem run.
pub const MIN_OWNER_COLOURS: usize = 6;

#[derive(Args, Clone, Debug)]
pub struct ScreenshotOpts {
    #[command(flatten)]
    pub run: RunOpts,
    /// Take the screenshot this many seconds after QEMU started, instead of at the middle of the first
    /// run with a pool.
    #[arg(long, value_name = "SECS")]
    pub at: Option<f64>,
    /// Where to write the PNG (default target/zkernel/screenshot.png).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What a screenshot holds.
#[derive(Debug)]
pub struct Shot {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// The framebuffer's size the kernel announced.
    pub announced: (u32, u32),
    /// The map's place, as the kernel announced it.
    pub map: Rect,
    /// Pixels of each owner colour inside the map.
    pub owners: BTreeMap<Category, u64>,
    /// The serial line at which it was taken (or `--at`).
    pub when: String,
}

impl Shot {
    pub fn describe(&self) -> String {
        let owners: Vec<String> = self.owners.iter().map(|(c, n)| format!("{} {}", c.name(), n)).collect();
        format!(
            "{} ({}x{}): {} owner colours in the map at ({},{}) {}x{}: {} (pixels); taken {}",
            self.path.display(),
            self.width,
            self.height,
            self.owners.len(),
            self.map.x,
            self.map.y,
            self.map.w,
            self.map.h,
            owners.join(", "),
            self.when
        )
    }
}

pub fn screenshot(o: &ScreenshotOpts) -> Result<std::process::ExitCode> {
    let shot = take(o, true)?;
    println!("xtask: screenshot saved to {}", shot.describe());
    Ok(std::process::ExitCode::SUCCESS)
}

/// The `picture: WxH framebuffer … map at (x,y) WxH` line: the framebuffer's size and the map.
pub fn parse_picture_line(line: &str) -> Option<((u32, u32), Rect)> {
    let rest = line.strip_prefix("picture: ")?;
    let (size, _) = rest.split_once(" framebuffer")?;
    let (w, h) = size.split_once('x')?;
    let (_, map) = rest.split_once("map at (")?;
    let (xy, rest) = map.split_once(") ")?;
    let (x, y) = xy.split_once(',')?;
    let wh = rest.split(';').next()?;
    let (mw, mh) = wh.split_once('x')?;
    let n = |s: &str| s.trim().parse::<u32>().ok();
    Some(((n(w)?, n(h)?), Rect { x: n(x)?, y: n(y)?, w: n(mw)?, h: n(mh)? }))
}

/// Whether `line` is the screenshot point of a run with a pool (not the disk-only run).
fn is_pool_point(line: &str) -> bool {
    line.starts_with("picture: drawn at access") && line.contains("screenshot point") && !line.contains(" run disk ")
}

/// Boot, take the screenshot, finish the run; the PNG read back and its owner colours counted.
pub fn take(o: &ScreenshotOpts, echo: bool) -> Result<Shot> {
    let mut run = o.run.clone();
    run.workload.get_or_insert(Workload::Swap);
    let target = cargo::target_dir(&cargo::metadata()?);
    let out = o.out.clone().unwrap_or_else(|| target.join("zkernel").join("screenshot.png"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&out);
    let out = std::path::absolute(&out).with_context(|| format!("{}", out.display()))?;
    let mut prepared = prepare_run(&run, false, true, "screenshot")?;
    let sock = target.join("zkernel").join(format!("qmp-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    prepared.args.extend(["-qmp".into(), format!("unix:{},server=on,wait=off", sock.display())]);
    if echo {
        eprintln!("xtask: {} {}", qemu::QEMU, prepared.args.join(" "));
    }
    let taken: Arc<Mutex<Option<Result<String>>>> = Arc::new(Mutex::new(None));
    if let Some(secs) = o.at {
        ensure!(secs.is_finite() && secs >= 0.0, "--at {secs}: want seconds, 0 or more");
        let (sock, out, taken) = (sock.clone(), out.clone(), taken.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs));
            let r = screendump(&sock, &out).map(|()| format!("at {secs} s"));
            *taken.lock().expect("no panics hold it") = Some(r);
        });
    }
    let mut announced = None;
    let mut failed = None;
    let mut stats_line = None;
    let by_line = o.at.is_none();
    let mut brief = crate::summary::Brief::default();
    let r = qemu::run(&prepared.args, prepared.timeout, |line| {
        if echo && (run.verbose || brief.show(line)) {
            println!("{line}");
        }
        if announced.is_none() {
            announced = parse_picture_line(line);
        }
        if let Some(why) = line.strip_prefix("zkernel: FAILED: ") {
            failed = Some(why.to_string());
        }
        if line.starts_with(zstats::PREFIX) {
            stats_line = Some(line.to_string());
        }
        let mut t = taken.lock().expect("no panics hold it");
        if by_line && t.is_none() && is_pool_point(line) {
            *t = Some(screendump(&sock, &out).map(|()| format!("at `{line}`")));
        }
    })?;
    let _ = std::fs::remove_file(&sock);
    let verdict = verdict::exit_verdict(r.status, r.timed_out, prepared.timeout.as_secs());
    if let Err(why) = verdict {
        match failed {
            Some(reason) => bail!("the kernel failed the run ({why}): {reason}"),
            None => return Err(why.into()),
        }
    }
    ensure!(stats_line.is_some(), "the kernel exited with success but printed no @@stats report");
    let (announced, map) =
        announced.context("the kernel printed no `picture: WxH framebuffer … map at …` line: it drew no picture")?;
    let when = match taken.lock().expect("no panics hold it").take() {
        Some(r) => r.context("the screendump over QMP failed")?,
        None if by_line => {
            bail!(
                "the run printed no screenshot point of a run with a pool (`picture: drawn at … screenshot point`); give --at SECS"
            )
        }
        None => bail!("the run ended before --at {} s", o.at.unwrap_or(0.0)),
    };
    let (width, height, owners) = owner_colours(&out, map)?;
    Ok(Shot { path: out, width, height, announced, map, owners, when })
}

/// Send one QMP command and wait for its answer (events in between are skipped).
fn qmp(w: &mut UnixStream, r: &mut impl BufRead, cmd: serde_json::Value) -> Result<()> {
    writeln!(w, "{cmd}").context("writing to QMP")?;
    let mut line = String::new();
    loop {
        line.clear();
        ensure!(r.read_line(&mut line).context("reading QMP")? > 0, "QMP closed the connection");
        let v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("QMP said {line:?}"))?;
        if v.get("return").is_some() {
            return Ok(());
        }
        if let Some(e) = v.get("error") {
            bail!("QMP {}: {}", cmd["execute"], e["desc"].as_str().unwrap_or("error"));
        }
    }
}

/// `stop`, `screendump FILE` as PNG, `cont` over the QMP socket.
fn screendump(sock: &Path, out: &Path) -> Result<()> {
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(e) if start.elapsed() > Duration::from_secs(10) => {
                return Err(e).with_context(|| format!("connecting to QMP at {}", sock.display()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).context("QMP socket")?;
    let mut w = stream.try_clone().context("QMP socket")?;
    let mut r = BufReader::new(stream);
    let mut greeting = String::new();
    r.read_line(&mut greeting).context("reading QMP's greeting")?;
    ensure!(greeting.contains("QMP"), "not a QMP greeting: {greeting:?}");
    qmp(&mut w, &mut r, serde_json::json!({"execute": "qmp_capabilities"}))?;
    qmp(&mut w, &mut r, serde_json::json!({"execute": "stop"}))?;
    let file = out.to_str().context("the PNG's path is not UTF-8")?;
    let dumped = qmp(
        &mut w,
        &mut r,
        serde_json::json!({"execute": "screendump", "arguments": {"filename": file, "format": "png"}}),
    );
    qmp(&mut w, &mut r, serde_json::json!({"execute": "cont"}))?;
    dumped
}

/// Decode the PNG and count the pixels of each owner colour inside `map`.
pub fn owner_colours(path: &Path, map: Rect) -> Result<(u32, u32, BTreeMap<Category, u64>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().with_context(|| format!("{} is not a PNG", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).with_context(|| format!("decoding {}", path.display()))?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => bail!("{}: colour type {other:?}, not RGB", path.display()),
    };
    let (w, h) = (info.width, info.height);
    ensure!(map.x + map.w <= w && map.y + map.h <= h, "the map {map:?} does not fit a {w}x{h} image");
    let mut owners = BTreeMap::new();
    for y in map.y..map.y + map.h {
        for x in map.x..map.x + map.w {
            let at = (y as usize * info.line_size) + x as usize * channels;
            if let Some(c) = Category::from_colour(Rgb(buf[at], buf[at + 1], buf[at + 2])) {
                *owners.entry(c).or_insert(0) += 1;
            }
        }
    }
    Ok((w, h, owners))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_picture_line_parses() {
        let line = "picture: 1280x720 framebuffer (Bgr, 4 B/px), 65504 frames from pfn 0x1, 1 a cell of 2 px, \
                    256 cells a row; map at (8,28) 512x512; redrawn every 256 accesses";
        assert_eq!(parse_picture_line(line), Some(((1280, 720), Rect { x: 8, y: 28, w: 512, h: 512 })));
        assert_eq!(parse_picture_line("picture: none (the bootloader gave no framebuffer)"), None);
        assert_eq!(parse_picture_line("picture: 1280x720 framebuffer, map at (8,28) 512x"), None);
    }

    #[test]
    fn only_a_pool_runs_point_triggers() {
        assert!(is_pool_point("picture: drawn at access 100 of 200 of run tmem-zsmalloc (redraw 3; screenshot point)"));
        assert!(!is_pool_point("picture: drawn at access 100 of 200 of run disk (redraw 3; screenshot point)"));
        assert!(!is_pool_point("picture: 3 redraws"));
    }

    /// A PNG with two owner colours inside the map and a third outside it counts two.
    #[test]
    fn owner_colours_count_only_inside_the_map() {
        let dir = std::env::temp_dir().join(format!("zkernel-shot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        let (w, h) = (8u32, 4u32);
        let mut px = vec![0u8; (w * h * 3) as usize];
        let mut put = |x: u32, y: u32, c: Rgb| {
            let at = ((y * w + x) * 3) as usize;
            px[at..at + 3].copy_from_slice(&[c.0, c.1, c.2]);
        };
        put(1, 1, Category::Zsmalloc.colour());
        put(2, 1, Category::Zsmalloc.colour());
        put(1, 2, Category::Workload.colour());
        put(7, 3, Category::Dma.colour()); // outside the map
        put(2, 2, mempic::TEXT);
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = png::Encoder::new(file, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&px).unwrap();
        let (pw, ph, owners) = owner_colours(&path, Rect { x: 0, y: 0, w: 4, h: 4 }).unwrap();
        assert_eq!((pw, ph), (8, 4));
        assert_eq!(owners, BTreeMap::from([(Category::Workload, 1), (Category::Zsmalloc, 2)]));
        assert!(owner_colours(&path, Rect { x: 0, y: 0, w: 9, h: 4 }).is_err(), "a map larger than the image");
        std::fs::write(&path, b"not a png").unwrap();
        assert!(owner_colours(&path, Rect { x: 0, y: 0, w: 1, h: 1 }).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
