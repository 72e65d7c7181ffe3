//! The framebuffer the bootloader set up (BIOS: a VBE linear mode of QEMU's VGA, at most 1280 × 720;
//! UEFI: the GOP mode OVMF was in), for the live memory picture (`workload::picture`).
//!
//! The bootloader maps the framebuffer into the kernel's address space itself, as it maps the ramdisk
//! (`BootloaderConfig::mappings.framebuffer`, dynamic by default): the mapping lies in the bootloader's
//! dynamic range, which the kernel's own regions never use, and it survives `mm::init` (which removes
//! only the recursive entry). So the kernel reaches it as the `&'static mut [u8]` the bootloader API
//! hands over, with no `unsafe` here and no mapping of its own — it is device memory (a PCI BAR of the
//! VGA device), not RAM the frame allocator manages.
//!
//! One plain spin lock guards it, taken innermost (nothing is acquired while it is held), as the
//! serial console's is.

use bootloader_api::info::{FrameBuffer, PixelFormat};
use mempic::Surface;
use spin::Mutex;

/// The framebuffer's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbInfo {
    pub width: u32,
    pub height: u32,
    /// Pixels a row in memory.
    pub stride: u32,
    pub bytes_per_pixel: usize,
    pub format: mempic::PixelFormat,
}

struct Fb {
    buf: &'static mut [u8],
    info: FbInfo,
    /// A copy in RAM that [`with`] draws into, when [`use_back_buffer`] made one; only the bytes that
    /// changed are then copied to the framebuffer ([`mempic::present`]).
    back: Option<alloc::vec::Vec<u8>>,
}

/// Bytes compared and copied at a time by [`with`].
const PRESENT_CHUNK: usize = 64;

static FB: Mutex<Option<Fb>> = Mutex::new(None);

/// Keep the bootloader's framebuffer, if it gave one in a format the picture can draw (RGB, BGR or
/// 8-bit grey). Returns what was kept, or why not.
pub fn install(fb: Option<FrameBuffer>) -> Result<FbInfo, &'static str> {
    let fb = fb.ok_or("the bootloader gave no framebuffer")?;
    let i = fb.info();
    let format = match i.pixel_format {
        PixelFormat::Rgb => mempic::PixelFormat::Rgb,
        PixelFormat::Bgr => mempic::PixelFormat::Bgr,
        PixelFormat::U8 => mempic::PixelFormat::Grey,
        _ => return Err("the framebuffer's pixel format is not RGB, BGR or grey"),
    };
    let info = FbInfo {
        width: i.width as u32,
        height: i.height as u32,
        stride: i.stride as u32,
        bytes_per_pixel: i.bytes_per_pixel,
        format,
    };
    let buf = fb.into_buffer();
    // Refuse a geometry the buffer does not hold before anyone draws.
    Surface::new(&mut *buf, info.width, info.height, info.stride, info.bytes_per_pixel, format)
        .map_err(|_| "the framebuffer is smaller than its geometry")?;
    *FB.lock() = Some(Fb { buf, info, back: None });
    Ok(info)
}

/// The framebuffer's geometry, if one was installed.
pub fn info() -> Option<FbInfo> {
    FB.lock().as_ref().map(|f| f.info)
}

/// Draw through a copy in RAM from now on (the memory picture: a few MiB of heap, once).
pub fn use_back_buffer() {
    if let Some(fb) = FB.lock().as_mut()
        && fb.back.is_none()
    {
        fb.back = Some(fb.buf.to_vec());
    }
}

/// Draw on the framebuffer: `f` gets it as a [`Surface`] (the copy in RAM, if there is one, whose
/// changed bytes are then copied to the framebuffer). `None` if there is none.
pub fn with<R>(f: impl FnOnce(&mut Surface<'_>) -> R) -> Option<R> {
    let mut g = FB.lock();
    let fb = g.as_mut()?;
    let i = fb.info;
    let target: &mut [u8] = match fb.back.as_mut() {
        Some(back) => back,
        None => &mut *fb.buf,
    };
    let mut s = Surface::new(target, i.width, i.height, i.stride, i.bytes_per_pixel, i.format).ok()?;
    let r = f(&mut s);
    if let Some(back) = fb.back.as_ref() {
        mempic::present(back, fb.buf, PRESENT_CHUNK);
    }
    Some(r)
}
