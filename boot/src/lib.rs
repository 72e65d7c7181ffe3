//! Host side of booting zkernel: kernel ELF → BIOS/UEFI disk image, and the QEMU command line.
//!
//! The `bootloader` crate (0.11) compiles its boot stages in its build script (about three minutes,
//! once; the result stays in `target/`) and embeds them; [`disk_image`] then only writes a FAT partition
//! with the kernel and the stages into an MBR (BIOS) or GPT (UEFI) image, which takes milliseconds.
//!
//! [`QemuConfig::args`] is the one place the QEMU machine of design.md is spelled out:
//!
//! | option | why |
//! |---|---|
//! | `-machine q35 -m 256M -smp 4` | the reference machine (memory and CPUs configurable) |
//! | `-drive format=raw,file=IMG` | the boot disk |
//! | `-drive if=none,id=NAME,format=raw[,readonly=on],file=PATH -device virtio-blk-pci,drive=NAME,serial=NAME` | each [`VirtioDisk`]: the kernel finds it by its serial (`swap`, `files`); the file disk is read-only |
//! | `-bios OVMF.fd` | UEFI firmware, only for UEFI images |
//! | `-serial stdio` | COM1 is the kernel console and the harness's input |
//! | `-device isa-debug-exit,iobase=0xf4,iosize=0x04` | the guest's verdict becomes QEMU's exit status |
//! | `-no-reboot` | a triple fault ends QEMU (status 0) instead of rebooting forever |
//! | `-display none` | no window unless asked |
//! | `-accel tcg` / `-accel kvm` | TCG by default: the KVM on our machines is slower for this guest |
//! | `-accel tcg,thread=multi` | multi-threaded TCG, one host thread per vCPU, said explicitly ([`QemuConfig::tcg_multi_thread`]: the SMP benchmark, whose figures mean nothing if the vCPUs take turns on one thread) |
//! | `-fw_cfg name=opt/zkernel/cmdline,string=…` | kernel options (read by `kernel/src/drivers/fw_cfg.rs`) |
//! | `-s -S` | gdb stub on :1234, CPU stopped until gdb continues |

use std::path::{Path, PathBuf};

use bootloader::{BootConfig, DiskImageBuilder};
use bootloader_boot_config::LevelFilter;

/// Which firmware boots the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

/// Where Debian's `ovmf` package puts the UEFI firmware, and other common places.
pub const OVMF_CANDIDATES: &[&str] =
    &["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd", "/usr/share/edk2/ovmf/OVMF.fd"];

/// The first OVMF image that exists on this machine.
pub fn find_ovmf() -> Option<PathBuf> {
    OVMF_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The bootloader's own settings, stored in the image: it stays quiet on COM1 (the serial console
/// belongs to the kernel and the harness) and shows only warnings on the framebuffer.
pub fn boot_config() -> BootConfig {
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = true;
    config.log_level = LevelFilter::Warn;
    config
}

/// Make (or reuse) the disk image of `kernel` for `firmware` at `out`, with an optional `ramdisk` file
/// that the bootloader loads into memory for the kernel (`BootInfo::ramdisk_addr`).
///
/// The image is rebuilt when it is missing or older than the kernel, the ramdisk, or `newer_than` (pass
/// the xtask executable, so a new bootloader version also rebuilds images).
pub fn disk_image(
    kernel: &Path,
    firmware: Firmware,
    out: &Path,
    ramdisk: Option<&Path>,
    newer_than: Option<&Path>,
) -> Result<(), String> {
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (stamp(out), stamp(kernel)) {
        (Some(img), Some(elf)) => {
            img >= elf
                && newer_than.and_then(stamp).is_none_or(|t| img >= t)
                && ramdisk.is_none_or(|r| stamp(r).is_some_and(|t| img >= t))
        }
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let mut builder = DiskImageBuilder::new(kernel.to_path_buf());
    builder.set_boot_config(&boot_config());
    if let Some(r) = ramdisk {
        builder.set_ramdisk(r.to_path_buf());
    }
    let result = match firmware {
        Firmware::Bios => builder.create_bios_image(out),
        Firmware::Uefi => builder.create_uefi_image(out),
    };
    result.map_err(|e| format!("making the {} image of {}: {e:#}", firmware.name(), kernel.display()))
}

/// A raw disk file attached as a virtio-blk PCI device. The guest tells disks apart by `name`, which
/// becomes the device's serial (its `VIRTIO_BLK_T_GET_ID` string) and QEMU's drive id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioDisk {
    /// `swap`, `files`…: 1 to 20 ASCII letters, digits, `-` or `_`, starting with a letter (a QEMU id,
    /// and at most the 20 bytes of a virtio-blk ID string).
    pub name: String,
    pub path: PathBuf,
    /// Attach with `readonly=on`: the guest sees `VIRTIO_BLK_F_RO` and QEMU takes only a shared lock
    /// on the file, so several QEMUs can attach the same image at once (the file disk).
    pub readonly: bool,
}

impl VirtioDisk {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), path: path.into(), readonly: false }
    }

    /// A disk the guest can only read.
    pub fn read_only(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self { readonly: true, ..Self::new(name, path) }
    }

    fn check_name(&self) -> Result<(), String> {
        let n = &self.name;
        let ok = (1..=20).contains(&n.len())
            && n.starts_with(|c: char| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok { Ok(()) } else { Err(format!("virtio disk name {n:?}: want 1-20 of [A-Za-z0-9_-], a letter first")) }
    }
}

/// Everything that shapes one QEMU run.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    pub image: PathBuf,
    pub firmware: Firmware,
    /// Path of OVMF.fd; required for UEFI.
    pub ovmf: Option<PathBuf>,
    pub smp: u32,
    pub mem_mib: u32,
    pub kvm: bool,
    /// Under TCG, ask for multi-threaded TCG (`-accel tcg,thread=multi`): each vCPU runs on its own host
    /// thread. QEMU 7.2 already does that by default for an x86_64 guest on an x86_64 host; spelling it
    /// out makes a QEMU whose default is one thread for all vCPUs (`thread=single`) run it the same way.
    /// No effect with `kvm`.
    pub tcg_multi_thread: bool,
    /// Show the framebuffer window instead of `-display none`.
    pub display: bool,
    /// Start the gdb stub and stop the CPU before the first instruction.
    pub gdb: bool,
    /// Kernel options, `key=value` words; passed through fw_cfg.
    pub kernel_options: Vec<String>,
    /// virtio-blk disks, in PCI slot order.
    pub disks: Vec<VirtioDisk>,
}

impl QemuConfig {
    pub fn new(image: PathBuf, firmware: Firmware) -> Self {
        Self {
            image,
            firmware,
            ovmf: None,
            smp: 4,
            mem_mib: 256,
            kvm: false,
            tcg_multi_thread: false,
            display: false,
            gdb: false,
            kernel_options: Vec::new(),
            disks: Vec::new(),
        }
    }

    /// The arguments after `qemu-system-x86_64`.
    pub fn args(&self) -> Result<Vec<String>, String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
        push(&["-machine", "q35"]);
        push(&["-m", &format!("{}M", self.mem_mib)]);
        push(&["-smp", &self.smp.to_string()]);
        let accel = match (self.kvm, self.tcg_multi_thread) {
            (true, _) => "kvm",
            (false, true) => "tcg,thread=multi",
            (false, false) => "tcg",
        };
        push(&["-accel", accel]);
        push(&["-drive", &format!("format=raw,file={}", fw_cfg_escape(&self.image.display().to_string()))]);
        for (i, d) in self.disks.iter().enumerate() {
            d.check_name()?;
            if self.disks[..i].iter().any(|e| e.name == d.name) {
                return Err(format!("two virtio disks are named {:?}", d.name));
            }
            let file = fw_cfg_escape(&d.path.display().to_string());
            let ro = if d.readonly { ",readonly=on" } else { "" };
            push(&["-drive", &format!("if=none,id={},format=raw{ro},file={file}", d.name)]);
            push(&["-device", &format!("virtio-blk-pci,drive={0},serial={0}", d.name)]);
        }
        if self.firmware == Firmware::Uefi {
            let ovmf = self.ovmf.as_ref().ok_or("UEFI needs OVMF.fd (Debian package `ovmf`)")?;
            push(&["-bios", &ovmf.display().to_string()]);
        }
        push(&["-serial", "stdio"]);
        push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        push(&["-no-reboot"]);
        if !self.display {
            push(&["-display", "none"]);
        }
        if !self.kernel_options.is_empty() {
            let joined = self.kernel_options.join(" ");
            push(&["-fw_cfg", &format!("name=opt/zkernel/cmdline,string={}", fw_cfg_escape(&joined))]);
        }
        if self.gdb {
            push(&["-s", "-S"]);
        }
        Ok(a)
    }
}

/// QEMU splits option values at commas; a literal comma is written twice (in fw_cfg strings and file names).
pub fn fw_cfg_escape(s: &str) -> String {
    s.replace(',', ",,")
}

/// What QEMU's exit status says about a test kernel (see `kernel/src/arch/qemu.rs`).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's status when the guest wrote 0x11.
pub const EXIT_FAILED: i32 = 35;

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(c: &QemuConfig) -> String {
        c.args().unwrap().join(" ")
    }

    #[test]
    fn bios_defaults_match_the_reference_machine() {
        let c = QemuConfig::new("target/x.img".into(), Firmware::Bios);
        assert_eq!(
            joined(&c),
            "-machine q35 -m 256M -smp 4 -accel tcg -drive format=raw,file=target/x.img -serial stdio \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -display none"
        );
    }

    #[test]
    fn multi_threaded_tcg_is_asked_for_only_when_set_and_never_with_kvm() {
        let mut c = QemuConfig::new("x.img".into(), Firmware::Bios);
        c.tcg_multi_thread = true;
        assert!(joined(&c).contains(" -smp 4 -accel tcg,thread=multi -drive "), "{}", joined(&c));
        c.kvm = true;
        let s = joined(&c);
        assert!(s.contains(" -accel kvm ") && !s.contains("thread="), "{s}");
    }

    #[test]
    fn uefi_needs_ovmf() {
        let mut c = QemuConfig::new("x.img".into(), Firmware::Uefi);
        assert!(c.args().unwrap_err().contains("ovmf"));
        c.ovmf = Some("/usr/share/ovmf/OVMF.fd".into());
        assert!(joined(&c).contains("-bios /usr/share/ovmf/OVMF.fd"));
    }

    #[test]
    fn options_kvm_gdb_display() {
        let mut c = QemuConfig::new("x.img".into(), Firmware::Bios);
        c.kvm = true;
        c.gdb = true;
        c.display = true;
        c.smp = 2;
        c.mem_mib = 512;
        c.kernel_options = vec!["loglevel=debug".into(), "a=b,c".into()];
        let s = joined(&c);
        assert!(s.contains("-accel kvm") && s.contains("-s -S") && !s.contains("-display none"));
        assert!(s.contains("-m 512M -smp 2"));
        assert!(s.contains("-fw_cfg name=opt/zkernel/cmdline,string=loglevel=debug a=b,,c"), "{s}");
    }

    #[test]
    fn virtio_disks_become_drives_with_serials() {
        let mut c = QemuConfig::new("x.img".into(), Firmware::Bios);
        c.disks = vec![
            VirtioDisk::new("swap", "target/zkernel/disks/k-swap.img"),
            VirtioDisk::read_only("files", "/tmp/a,b.img"),
        ];
        let s = joined(&c);
        assert!(
            s.contains(
                "-drive format=raw,file=x.img \
                 -drive if=none,id=swap,format=raw,file=target/zkernel/disks/k-swap.img \
                 -device virtio-blk-pci,drive=swap,serial=swap \
                 -drive if=none,id=files,format=raw,readonly=on,file=/tmp/a,,b.img \
                 -device virtio-blk-pci,drive=files,serial=files -serial stdio"
            ),
            "{s}"
        );
    }

    #[test]
    fn virtio_disk_names_are_checked() {
        let mut c = QemuConfig::new("x.img".into(), Firmware::Bios);
        for bad in ["", "1swap", "sw,ap", "a-name-longer-than-20-bytes"] {
            c.disks = vec![VirtioDisk::new(bad, "d.img")];
            assert!(c.args().is_err(), "{bad:?} accepted");
        }
        c.disks = vec![VirtioDisk::new("swap", "a.img"), VirtioDisk::new("swap", "b.img")];
        assert!(c.args().unwrap_err().contains("two virtio disks"));
        c.disks = vec![VirtioDisk::new("swap_2-b", "a.img")];
        assert!(c.args().is_ok());
    }

    #[test]
    fn boot_config_silences_serial() {
        let c = boot_config();
        assert!(!c.serial_logging);
    }
}
