//! The serial console: COM1 through `uart_16550`, `print!`/`println!`, and the `log` facade.
//!
//! QEMU connects COM1 to its stdout (`-serial stdio`), so everything here reaches the terminal that ran
//! `cargo xtask run` and the harness that judges a test kernel. Lines end in `\r\n` because QEMU puts a
//! terminal in raw mode.
//!
//! # Contract
//!
//! * The port is behind a spin lock taken with interrupts off, so an interrupt handler that prints
//!   cannot deadlock against the code it interrupted.
//! * Output before [`init`] is dropped (nothing can be printed before the UART is programmed).
//! * The fatal path (exception report, panic) calls [`force_unlock`] first: it may have interrupted a
//!   `println!` holding the lock, and a last report matters more than one garbled line.

use core::fmt::{self, Write};

use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

/// I/O port base of COM1.
pub const COM1: u16 = 0x3f8;

struct Serial(Uart16550<PioBackend>);

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.send_bytes_exact(b"\r\n");
            }
            self.0.send_bytes_exact(line.as_bytes());
        }
        Ok(())
    }
}

static SERIAL: Mutex<Option<Serial>> = Mutex::new(None);

/// Program COM1 (115200 8N1, FIFO on) and install the logger at `level`.
pub fn init(level: log::LevelFilter) {
    // SAFETY: 0x3f8..0x400 are COM1's registers on every PC and QEMU machine; this is the only code that
    // creates a driver for them, and it stores it behind the SERIAL lock for the kernel's lifetime.
    let uart = unsafe { Uart16550::new_port(COM1) };
    if let Ok(mut uart) = uart
        && uart.init(Config::default()).is_ok()
    {
        *SERIAL.lock() = Some(Serial(uart));
    }
    // `set_logger` fails only if a logger is already set (init called twice): keep the first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Change the log level (after the kernel options are read).
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(serial) = SERIAL.lock().as_mut() {
            let _ = serial.write_fmt(args);
        }
    });
}

/// A byte COM1 received, if one is waiting (the line status register's data-ready bit); `None` at once
/// otherwise. Polled: the UART's receive interrupt stays off, so the serial shell (`workload::shell`)
/// asks in a loop. QEMU stops reading its stdin while the receive FIFO is full, so no byte is lost
/// while the shell runs a long command.
pub fn try_read_byte() -> Option<u8> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        SERIAL.lock().as_mut().and_then(|serial| serial.0.try_receive_byte().ok())
    })
}

/// Write bytes exactly as given (no `\n` → `\r\n`): the line editor's echo and erase sequences.
pub fn write_raw(bytes: &[u8]) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(serial) = SERIAL.lock().as_mut() {
            serial.0.send_bytes_exact(bytes);
        }
    })
}

/// Check that the UART answers: write and read back its scratch register.
pub fn self_test() -> Result<(), &'static str> {
    x86_64::instructions::interrupts::without_interrupts(|| match SERIAL.lock().as_mut() {
        Some(serial) => match serial.0.check_present() {
            true => Ok(()),
            false => Err("COM1 scratch register did not read back"),
        },
        None => Err("COM1 was not initialised"),
    })
}

/// Break the console lock on the way down (see the module contract).
pub fn force_unlock() {
    if SERIAL.is_locked() {
        // SAFETY: only called on the fatal path, after which nothing returns to the code that held the
        // lock; the UART driver holds no invariant a half-written line can break.
        unsafe { SERIAL.force_unlock() };
    }
}

/// Print to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::drivers::console::_print(format_args!($($arg)*)));
}

/// Print a line to the serial console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::drivers::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            crate::println!("[{:5} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}
