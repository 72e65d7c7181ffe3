//! The file disk: a directory of files packed into the `fsimage` format (kernel/libs/fsimage) and
//! attached read-only as the virtio-blk disk with serial `files`, next to `swap`, on every QEMU run.
//!
//! By default the image holds the repository's own text and data: `README.md`, `Cargo.toml`, and
//! everything under `docs/`, `kernel/`, `tests/`, `xtask/`, `boot/` and `data/` (the real page sample). `cargo xtask run --files DIR` packs DIR instead, with names
//! relative to it. Hidden entries (`.git`, …), `target/` directories and files over [`MAX_FILE_BYTES`]
//! are left out. Names are sorted, so the same files always give the same image.
//!
//! The image is `target/zkernel/disks/files.img` (`files-<dir>.img` for `--files`). Packing is cheap (a
//! few MiB of copying), so it is redone every time; the file is only rewritten when its bytes change,
//! and then through a rename, so a QEMU still running on the old image keeps reading the old bytes.
//! The disk is read-only (`readonly=on`), so every test kernel of a run shares the one image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use walkdir::WalkDir;

/// The disk's serial, which the kernel looks it up by (`kernel/src/fs.rs`).
pub const DISK_NAME: &str = "files";
/// Files larger than this are left out (a stray binary would swell every test's disk).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Top-level files of the default set, relative to the workspace root.
const DEFAULT_FILES: &[&str] = &["README.md", "Cargo.toml"];
/// Directories of the default set, relative to the workspace root.
const DEFAULT_DIRS: &[&str] = &["docs", "kernel", "tests", "xtask", "boot", "data"];

/// A packed image, ready to attach.
#[derive(Debug, Clone)]
pub struct FilesImage {
    pub path: PathBuf,
    pub files: usize,
    /// Bytes of file contents (the image is larger: header, table, padding).
    pub bytes: u64,
    /// Pages of the image.
    pub pages: u64,
    /// Files left out because they are over [`MAX_FILE_BYTES`] (or not UTF-8 names).
    pub skipped: Vec<String>,
}

impl FilesImage {
    /// The read-only virtio disk QEMU attaches.
    pub fn disk(&self) -> boot::VirtioDisk {
        boot::VirtioDisk::read_only(DISK_NAME, &self.path)
    }

    /// One line for the console.
    pub fn describe(&self) -> String {
        let skipped =
            if self.skipped.is_empty() { String::new() } else { format!("; left out {}", self.skipped.join(", ")) };
        format!(
            "files disk {} ({} files, {} KiB in {} pages){skipped}",
            self.path.display(),
            self.files,
            self.bytes / 1024,
            self.pages
        )
    }
}

/// Collect, pack and write the file disk under `target/zkernel/disks/`: the default set when `dir` is
/// `None`, else the files of `dir`.
pub fn prepare(target: &Path, dir: Option<&Path>) -> Result<FilesImage> {
    let mut found = Found::default();
    let out_name = match dir {
        None => {
            let root = crate::cargo::workspace_root();
            collect_default(&root, &mut found)?;
            "files.img".to_string()
        }
        Some(dir) => {
            collect_dir_option(dir, &mut found)?;
            let base = dir.canonicalize().ok();
            let stem = base.as_deref().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or("dir");
            let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            format!("files-{stem}.img")
        }
    };
    found.files.sort();
    let contents: Vec<(String, Vec<u8>)> = found
        .files
        .iter()
        .map(|(name, path)| {
            std::fs::read(path).map(|d| (name.clone(), d)).with_context(|| format!("reading {}", path.display()))
        })
        .collect::<Result<_>>()?;
    let image = fsimage::pack(&contents)
        .map_err(|e| match e {
            fsimage::PackError::NameTooLong { index, .. }
            | fsimage::PackError::EmptyName { index }
            | fsimage::PackError::NameHasNul { index }
            | fsimage::PackError::DuplicateName { index, .. } => {
                anyhow!("{e} ({})", found.files[index].1.display())
            }
            fsimage::PackError::TooManyFiles { .. } => anyhow!("{e}"),
        })
        .context("packing the file disk")?;
    let disks = target.join("zkernel").join("disks");
    std::fs::create_dir_all(&disks).with_context(|| format!("creating {}", disks.display()))?;
    let path = disks.join(out_name);
    write_if_changed(&path, &image)?;
    Ok(FilesImage {
        path,
        files: contents.len(),
        bytes: contents.iter().map(|(_, d)| d.len() as u64).sum(),
        pages: (image.len() / fsimage::PAGE_SIZE) as u64,
        skipped: found.skipped,
    })
}

/// Write `bytes` to `path` unless it already holds them; through a temporary file and a rename.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("img.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[derive(Default)]
struct Found {
    /// (name in the image, path on the host)
    files: Vec<(String, PathBuf)>,
    skipped: Vec<String>,
}

fn collect_default(root: &Path, found: &mut Found) -> Result<()> {
    for f in DEFAULT_FILES {
        let path = root.join(f);
        if path.is_file() {
            add_file(&path, f.to_string(), found)?;
        }
    }
    for d in DEFAULT_DIRS {
        let dir = root.join(d);
        if dir.is_dir() {
            walk(&dir, d, found)?;
        }
    }
    Ok(())
}

/// `--files DIR`: the directory must exist and hold at least one file.
fn collect_dir_option(dir: &Path, found: &mut Found) -> Result<()> {
    let what = || format!("--files {}", dir.display());
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(anyhow!("no such directory")).with_context(what);
        }
        Err(e) => return Err(e).with_context(what),
        Ok(m) if !m.is_dir() => return Err(anyhow!("not a directory")).with_context(what),
        Ok(_) => {}
    }
    walk(dir, "", found)?;
    if found.files.is_empty() {
        return Err(anyhow!(
            "no files to pack (hidden entries, target/ and files over {} MiB are left out)",
            MAX_FILE_BYTES >> 20
        ))
        .with_context(what);
    }
    Ok(())
}

/// Every file under `dir`, named `prefix/relative/path`, skipping hidden entries and `target/`
/// directories. Symbolic links are followed, like `cp -L`; a dangling one is passed over, and so is a
/// link back to a directory above it (it would never end). Directories are visited in file-name order,
/// so [`Found::skipped`] comes out the same every time.
fn walk(dir: &Path, prefix: &str, found: &mut Found) -> Result<()> {
    let mut entries = WalkDir::new(dir).min_depth(1).follow_links(true).sort_by_file_name().into_iter();
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                let passed_over = e.loop_ancestor().is_some() || std::fs::metadata(&path).is_err();
                if passed_over && path != dir {
                    continue;
                }
                let why = e.into_io_error().map_or_else(|| anyhow!("a symbolic link loop"), anyhow::Error::new);
                return Err(why).with_context(|| format!("reading {}", path.display()));
            }
        };
        let is_dir = entry.file_type().is_dir();
        let Some(file_name) = entry.file_name().to_str() else {
            found.skipped.push(format!("{} (name not UTF-8)", entry.path().display()));
            if is_dir {
                entries.skip_current_dir();
            }
            continue;
        };
        if file_name.starts_with('.') || (is_dir && file_name == "target") {
            if is_dir {
                entries.skip_current_dir();
            }
            continue;
        }
        if !entry.file_type().is_file() {
            continue; // a directory (walked into next), or a socket, a FIFO, a device
        }
        // Every component above this one was UTF-8, or it would have been skipped.
        let relative = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        let relative: Vec<&str> = relative.components().filter_map(|c| c.as_os_str().to_str()).collect();
        let name = if prefix.is_empty() { relative.join("/") } else { format!("{prefix}/{}", relative.join("/")) };
        add_file(entry.path(), name, found)?;
    }
    Ok(())
}

fn add_file(path: &Path, name: String, found: &mut Found) -> Result<()> {
    let len = std::fs::metadata(path).with_context(|| path.display().to_string())?.len();
    if len > MAX_FILE_BYTES {
        found.skipped.push(format!("{name} ({} MiB)", len >> 20));
        return Ok(());
    }
    if name.len() > fsimage::NAME_LEN {
        bail!(
            "{}: its name in the file disk, {name:?}, is {} bytes, at most {} fit",
            path.display(),
            name.len(),
            fsimage::NAME_LEN
        );
    }
    found.files.push((name, path.to_path_buf()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zkernel-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_directory_packs_into_an_image_the_kernel_format_accepts() {
        let dir = temp("pack");
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(src.join(".git")).unwrap();
        std::fs::create_dir_all(src.join("target")).unwrap();
        std::fs::write(src.join("a.txt"), b"hello").unwrap();
        std::fs::write(src.join("sub/b.bin"), vec![7u8; 5000]).unwrap();
        std::fs::write(src.join("sub/deeper/empty"), b"").unwrap();
        std::fs::write(src.join(".hidden"), b"no").unwrap();
        std::fs::write(src.join(".git/config"), b"no").unwrap();
        std::fs::write(src.join("target/x"), b"no").unwrap();
        let big = std::fs::File::create(src.join("big")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: costs nothing
        let out = prepare(&dir.join("target"), Some(&src)).unwrap();
        assert_eq!(out.path, dir.join("target/zkernel/disks/files-src.img"));
        assert_eq!((out.files, out.bytes), (3, 5005));
        assert_eq!(out.skipped, ["big (4 MiB)"]);
        let bytes = std::fs::read(&out.path).unwrap();
        assert_eq!(out.pages, (bytes.len() / 4096) as u64);
        let image = fsimage::Image::parse(&bytes).unwrap();
        let names: Vec<&str> = image.files.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["a.txt", "sub/b.bin", "sub/deeper/empty"]);
        let (_, b) = image.file("sub/b.bin").unwrap();
        assert_eq!(image.data(&bytes, b), &[7u8; 5000][..]);
        // Packing again leaves the file alone.
        let before = std::fs::metadata(&out.path).unwrap().modified().unwrap();
        prepare(&dir.join("target"), Some(&src)).unwrap();
        assert_eq!(std::fs::metadata(&out.path).unwrap().modified().unwrap(), before);
        let disk = out.disk();
        assert_eq!((disk.name.as_str(), disk.readonly), ("files", true));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_default_set_is_the_repository_and_the_sample_data() {
        let dir = temp("default");
        let out = prepare(&dir, None).unwrap();
        let bytes = std::fs::read(&out.path).unwrap();
        let image = fsimage::Image::parse(&bytes).unwrap();
        for name in ["README.md", "Cargo.toml", "xtask/src/files.rs", "kernel/libs/fsimage/src/lib.rs"] {
            assert!(image.file(name).is_some(), "{name} is in the default set");
        }
        assert!(image.files.iter().all(|f| !f.name().contains("/target/") && !f.name().starts_with('.')));
        assert!(out.bytes < 64 << 20, "a few MiB, not {} MiB", out.bytes >> 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_empty_and_non_directories_are_refused() {
        let dir = temp("bad");
        let target = dir.join("target");
        let err = format!("{:#}", prepare(&target, Some(&dir.join("nope"))).unwrap_err());
        assert_eq!(err, format!("--files {}: no such directory", dir.join("nope").display()));
        std::fs::create_dir_all(dir.join("empty/.git")).unwrap();
        std::fs::write(dir.join("empty/.git/x"), b"x").unwrap();
        let err = format!("{:#}", prepare(&target, Some(&dir.join("empty"))).unwrap_err());
        assert!(err.starts_with(&format!("--files {}: no files to pack", dir.join("empty").display())), "{err}");
        std::fs::write(dir.join("file"), b"x").unwrap();
        let err = format!("{:#}", prepare(&target, Some(&dir.join("file"))).unwrap_err());
        assert_eq!(err, format!("--files {}: not a directory", dir.join("file").display()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn links_are_followed_and_dangling_or_looping_ones_passed_over() {
        let dir = temp("links");
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("real")).unwrap();
        std::fs::write(src.join("real/f"), b"data").unwrap();
        std::os::unix::fs::symlink(src.join("real"), src.join("alias")).unwrap();
        std::os::unix::fs::symlink(src.join("nowhere"), src.join("dangling")).unwrap();
        std::os::unix::fs::symlink(&src, src.join("real/up")).unwrap();
        let out = prepare(&dir.join("target"), Some(&src)).unwrap();
        let bytes = std::fs::read(&out.path).unwrap();
        let image = fsimage::Image::parse(&bytes).unwrap();
        let names: Vec<&str> = image.files.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["alias/f", "real/f"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_names_are_refused_with_the_path() {
        let dir = temp("long");
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("n".repeat(fsimage::NAME_LEN + 1)), b"x").unwrap();
        let err = prepare(&dir.join("target"), Some(&src)).unwrap_err().to_string();
        assert!(err.ends_with("is 105 bytes, at most 104 fit"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
