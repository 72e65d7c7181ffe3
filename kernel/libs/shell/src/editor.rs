//! A line editor for a serial console: one byte in, one [`Action`] out (what to echo), no I/O of its own.
//!
//! | byte | action | echo the caller sends |
//! |---|---|---|
//! | printable ASCII `0x20..=0x7e` | [`Action::Insert`] | the byte |
//! | BS `0x08` or DEL `0x7f` | [`Action::Erase`] (nothing to erase: [`Action::Ignored`]) | `BS SP BS` |
//! | Ctrl-U `0x15` | [`Action::Kill`]`(n)`: the whole line | `n ×` `BS SP BS` |
//! | Ctrl-C `0x03` | [`Action::Cancel`]: the line is dropped | `^C` and a new line |
//! | CR `0x0d` or LF `0x0a` | [`Action::Line`]: [`LineEditor::line`] holds it until [`LineEditor::clear`] | a new line |
//! | LF right after CR | [`Action::Ignored`] (CR LF is one Enter) | — |
//! | ESC, then `[` params final, or ESC and one byte | [`Action::Ignored`] until the sequence ends | — |
//! | anything else (other controls, bytes ≥ 0x80) | [`Action::Ignored`] | — |
//!
//! Worked example: the bytes `m e x BS m CR LF` give Insert, Insert, Insert, Erase, Insert, Line,
//! Ignored, and the line `mem`.

/// Most bytes in one line.
pub const LINE_MAX: usize = 120;

/// What one byte did (and so what the caller echoes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The byte was appended: echo it.
    Insert(u8),
    /// The last byte was removed: echo backspace, space, backspace.
    Erase,
    /// The whole line (this many bytes) was removed.
    Kill(usize),
    /// The line is complete: read it with [`LineEditor::line`], then [`LineEditor::clear`].
    Line,
    /// Ctrl-C: the line was dropped.
    Cancel,
    /// The line is full: the byte was not added (ring the bell).
    Full,
    /// Nothing changed.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [`: parameters until a final byte `0x40..=0x7e`.
    Csi,
}

/// The line being typed.
#[derive(Debug, Clone)]
pub struct LineEditor {
    buf: [u8; LINE_MAX],
    len: usize,
    escape: Escape,
    last_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub const fn new() -> Self {
        LineEditor { buf: [0; LINE_MAX], len: 0, escape: Escape::None, last_cr: false }
    }

    /// Take one received byte.
    pub fn feed(&mut self, byte: u8) -> Action {
        let after_cr = core::mem::replace(&mut self.last_cr, byte == b'\r');
        match self.escape {
            Escape::Start => {
                self.escape = if byte == b'[' { Escape::Csi } else { Escape::None };
                return Action::Ignored;
            }
            Escape::Csi => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                }
                return Action::Ignored;
            }
            Escape::None => {}
        }
        match byte {
            b'\n' if after_cr => Action::Ignored,
            b'\r' | b'\n' => Action::Line,
            0x1b => {
                self.escape = Escape::Start;
                Action::Ignored
            }
            0x08 | 0x7f if self.len > 0 => {
                self.len -= 1;
                Action::Erase
            }
            0x15 if self.len > 0 => Action::Kill(core::mem::take(&mut self.len)),
            0x03 => {
                self.len = 0;
                Action::Cancel
            }
            0x20..=0x7e if self.len == LINE_MAX => Action::Full,
            0x20..=0x7e => {
                self.buf[self.len] = byte;
                self.len += 1;
                Action::Insert(byte)
            }
            _ => Action::Ignored,
        }
    }

    /// The line so far (printable ASCII only, so always UTF-8).
    pub fn line(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Start a new line.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(e: &mut LineEditor, bytes: &[u8]) -> Vec<Action> {
        bytes.iter().map(|&b| e.feed(b)).collect()
    }

    #[test]
    fn worked_example() {
        let mut e = LineEditor::new();
        let a = feed_all(&mut e, b"mex\x08m\r\n");
        use Action::*;
        assert_eq!(a, [Insert(b'm'), Insert(b'e'), Insert(b'x'), Erase, Insert(b'm'), Line, Ignored]);
        assert_eq!(e.line(), "mem");
        e.clear();
        assert_eq!(e.line(), "");
    }

    #[test]
    fn lf_alone_and_cr_alone_end_a_line() {
        let mut e = LineEditor::new();
        assert_eq!(feed_all(&mut e, b"a\n").last(), Some(&Action::Line));
        e.clear();
        assert_eq!(feed_all(&mut e, b"b\r").last(), Some(&Action::Line));
        assert_eq!(e.line(), "b");
        e.clear();
        // A second LF after CR LF is an empty line.
        assert_eq!(feed_all(&mut e, b"\n\n"), [Action::Ignored, Action::Line]);
    }

    #[test]
    fn backspace_on_empty_line_and_del() {
        let mut e = LineEditor::new();
        assert_eq!(e.feed(0x08), Action::Ignored);
        assert_eq!(feed_all(&mut e, b"ab\x7f"), [Action::Insert(b'a'), Action::Insert(b'b'), Action::Erase]);
        assert_eq!(e.line(), "a");
    }

    #[test]
    fn ctrl_u_and_ctrl_c() {
        let mut e = LineEditor::new();
        assert_eq!(feed_all(&mut e, b"abc\x15").last(), Some(&Action::Kill(3)));
        assert_eq!(e.line(), "");
        assert_eq!(e.feed(0x15), Action::Ignored);
        feed_all(&mut e, b"xy");
        assert_eq!(e.feed(0x03), Action::Cancel);
        assert_eq!(e.line(), "");
    }

    #[test]
    fn escape_sequences_are_skipped() {
        let mut e = LineEditor::new();
        // Up arrow, a parameterised sequence, then ESC O A (SS3): none inserts.
        let a = feed_all(&mut e, b"\x1b[A\x1b[1;5C\x1bOAq");
        // `ESC O` ends the escape at `O`; the `A` after it is ordinary text.
        assert_eq!(e.line(), "Aq");
        assert!(a[..9].iter().all(|&x| x == Action::Ignored));
    }

    #[test]
    fn full_line_refuses_and_keeps() {
        let mut e = LineEditor::new();
        for _ in 0..LINE_MAX {
            assert!(matches!(e.feed(b'x'), Action::Insert(_)));
        }
        assert_eq!(e.feed(b'y'), Action::Full);
        assert_eq!(e.line().len(), LINE_MAX);
        assert_eq!(e.feed(0x7f), Action::Erase);
        assert_eq!(e.feed(b'z'), Action::Insert(b'z'));
    }

    #[test]
    fn non_ascii_and_controls_are_ignored() {
        let mut e = LineEditor::new();
        let a = feed_all(&mut e, &[0x00, 0x07, 0x09, 0x80, 0xc3, 0xa9, 0xff]);
        assert!(a.iter().all(|&x| x == Action::Ignored));
        assert_eq!(e.line(), "");
    }

    #[test]
    fn every_byte_sequence_keeps_the_line_printable() {
        // A small exhaustive-ish sweep: any bytes, the line stays ASCII and within LINE_MAX.
        let mut e = LineEditor::new();
        let mut x: u32 = 12345;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = (x >> 16) as u8;
            if e.feed(b) == Action::Line {
                e.clear();
            }
            assert!(e.line().len() <= LINE_MAX);
            assert!(e.line().bytes().all(|c| (0x20..=0x7e).contains(&c)));
        }
    }
}
