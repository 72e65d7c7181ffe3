//! The serial shell's two portable halves: a line editor that turns the bytes a UART receives into lines
//! ([`editor`]), and the parser that turns a line into a [`Command`] or a typed error ([`command`]).
//! The kernel's `workload::shell` reads the UART, feeds this crate and runs the commands on its real
//! state; nothing here prints or knows the kernel.
//!
//! # Why a small editor of our own, not `noline`
//!
//! `noline` (the no_std line editor the issue suggests) starts every line by asking the terminal where
//! its cursor is (`ESC [ 6 n`) and waits for the answer before it reads a key. A lesson replayed from a
//! file (`cargo xtask run --script FILE`) or a test has no terminal to answer, so the shell would wait
//! forever; and its screen redraws (`ESC [ J`, cursor moves) would fill a recorded lesson with escape
//! codes. The editor here needs no answer and echoes only what was typed: printable ASCII, backspace
//! (BS or DEL), Ctrl-U (erase the line), Ctrl-C (drop the line), Enter (CR, LF or CR LF). Escape
//! sequences (arrow keys) are read to their end and ignored.
//!
//! # Contract
//!
//! * A line holds at most [`editor::LINE_MAX`] bytes; a key past that is refused ([`editor::Action::Full`])
//!   and the line stays as it was.
//! * [`command::parse`] never panics: any line gives a [`Command`] or a [`ParseError`] whose `Display`
//!   is the one-line message the shell prints.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod command;
pub mod editor;

pub use command::{COMMANDS, Command, CommandSpec, ParseError, TraceArg, parse};
pub use editor::{Action, LINE_MAX, LineEditor};
