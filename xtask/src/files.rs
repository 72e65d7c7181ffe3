//! The file disk: a directory of files packed into the `fsimage` format (kernel/libs/fsimage) and
//! attached read-only as the virtio-blk disk with serial `files`, next to `swap`, on every QEMU run.
//!
//! By default the image holds the repository's own text: `README.md`, `Cargo.toml`, and everything
//! under `docs/`, `kernel/`, `tests/`, `xtask/` and `boot/`, plus the team's sample data in
//! `../shared/data` (named `shared/data/…`). `cargo xtask run --files DIR` packs DIR instead, with names
//! relative to it. Hidden entries (`.git`, …), `target/` directories and files over [`MAX_FILE_BYTES`]
//! are left out. Names are sorted, so the same files always give the same image.
//!
//! The image is `target/zkernel/disks/files.img` (`files-<dir>.img` for `--files`). Packing is cheap (a
//! few MiB of copying), so it is redone every time; the file is only rewritten when its bytes change,
//! and then through a rename, so a QEMU still running on the old image keeps reading the old bytes.
//! The disk is read-only (`readonly=on`), so every test kernel of a run shares the one image.

use std::path::{Path, PathBuf};

/// The disk's serial, which the kernel looks it up by (`kernel/src/fs.rs`).
pub const DISK_NAME: &str = "files";
/// Files larger than this are left out (a stray binary would swell every test's disk).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Top-level files of the default set, relative to the workspace root.
const DEFAULT_FILES: &[&str] = &["README.md", "Cargo.toml"];
/// Directories of the default set, relative to the workspace root.
const DEFAULT_DIRS: &[&str] = &["docs", "kernel", "tests", "xtask", "boot"];
/// The team's shared data, relative to the workspace root, and the name prefix it gets in the image.
const SHARED_DATA: (&str, &str) = ("../shared/data", "shared/data");

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
pub fn prepare(target: &Path, dir: Option<&Path>) -> Result<FilesImage, String> {
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
            std::fs::read(path).map(|d| (name.clone(), d)).map_err(|e| format!("reading {}: {e}", path.display()))
        })
        .collect::<Result<_, _>>()?;
    let image = fsimage::pack(&contents).map_err(|e| match e {
        fsimage::PackError::NameTooLong { index, .. }
        | fsimage::PackError::EmptyName { index }
        | fsimage::PackError::NameHasNul { index }
        | fsimage::PackError::DuplicateName { index, .. } => {
            format!("packing the file disk: {e} ({})", found.files[index].1.display())
        }
        fsimage::PackError::TooManyFiles { .. } => format!("packing the file disk: {e}"),
    })?;
    let disks = target.join("zkernel").join("disks");
    std::fs::create_dir_all(&disks).map_err(|e| format!("creating {}: {e}", disks.display()))?;
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
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("img.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}

#[derive(Default)]
struct Found {
    /// (name in the image, path on the host)
    files: Vec<(String, PathBuf)>,
    skipped: Vec<String>,
}

fn collect_default(root: &Path, found: &mut Found) -> Result<(), String> {
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
    let (shared, prefix) = SHARED_DATA;
    let shared = root.join(shared);
    if shared.is_dir() {
        walk(&shared, prefix, found)?;
    } else {
        eprintln!("xtask: {} not found; the file disk has no sample data", shared.display());
    }
    Ok(())
}

/// `--files DIR`: the directory must exist and hold at least one file.
fn collect_dir_option(dir: &Path, found: &mut Found) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("--files {}: no such directory", dir.display()));
        }
        Err(e) => return Err(format!("--files {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return Err(format!("--files {}: not a directory", dir.display())),
        Ok(_) => {}
    }
    walk(dir, "", found)?;
    if found.files.is_empty() {
        return Err(format!(
            "--files {}: no files to pack (hidden entries, target/ and files over {} MiB are left out)",
            dir.display(),
            MAX_FILE_BYTES >> 20
        ));
    }
    Ok(())
}

/// Every file under `dir`, named `prefix/relative/path`, skipping hidden entries and `target/`.
fn walk(dir: &Path, prefix: &str, found: &mut Found) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(String::from) else {
            found.skipped.push(format!("{} (name not UTF-8)", path.display()));
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        let name = if prefix.is_empty() { file_name.clone() } else { format!("{prefix}/{file_name}") };
        // Follows symbolic links, like `cp -L`.
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            if file_name != "target" {
                walk(&path, &name, found)?;
            }
        } else if meta.is_file() {
            add_file(&path, name, found)?;
        }
    }
    Ok(())
}

fn add_file(path: &Path, name: String, found: &mut Found) -> Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if len > MAX_FILE_BYTES {
        found.skipped.push(format!("{name} ({} MiB)", len >> 20));
        return Ok(());
    }
    if name.len() > fsimage::NAME_LEN {
        return Err(format!(
            "{}: its name in the file disk, {name:?}, is {} bytes, at most {} fit",
            path.display(),
            name.len(),
            fsimage::NAME_LEN
        ));
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
        let err = prepare(&target, Some(&dir.join("nope"))).unwrap_err();
        assert!(err.starts_with("--files ") && err.ends_with("nope: no such directory"), "{err}");
        std::fs::create_dir_all(dir.join("empty/.git")).unwrap();
        std::fs::write(dir.join("empty/.git/x"), b"x").unwrap();
        let err = prepare(&target, Some(&dir.join("empty"))).unwrap_err();
        assert!(err.contains("no files to pack"), "{err}");
        std::fs::write(dir.join("file"), b"x").unwrap();
        assert!(prepare(&target, Some(&dir.join("file"))).unwrap_err().contains("not a directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_names_are_refused_with_the_path() {
        let dir = temp("long");
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("n".repeat(fsimage::NAME_LEN + 1)), b"x").unwrap();
        let err = prepare(&dir.join("target"), Some(&src)).unwrap_err();
        assert!(err.contains("at most 104 fit"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
