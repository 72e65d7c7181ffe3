//! Fuzz target `kopts_parse`: the kernel-option parser fed arbitrary text.
//!
//! # Why
//!
//! The option string comes from the user through QEMU's fw_cfg and is parsed twice, by xtask on the
//! host and by the kernel at boot, with [`kopts::Settings::parse`]. A panic there is a kernel panic
//! before the first line of output, and a value that passes parsing but not its own table row would be
//! a setting nobody checked.
//!
//! # Input
//!
//! Arbitrary bytes, read as UTF-8 with invalid sequences replaced (`U+FFFD`), so every input is a
//! string; the first 64 bytes are also decoded as a fw_cfg directory entry.
//!
//! # What is checked
//!
//! - No call panics: [`Settings::parse`], [`check_word`], [`check_value`], the old [`Options`] reader,
//!   [`FwCfgFile::parse`], and every error's `Display` and `key`.
//! - `Err` is never empty, and holds exactly one error per word [`check_word`] refuses (in their order)
//!   when there is such a word, else exactly one (a combination).
//! - [`check_word`] agrees with [`check_value`] on the row it names.
//! - Round trip: `Ok(s)` written back as `key=value` for every option ([`Settings::get`], unset ones
//!   left out) parses to `s` again.
//!
//! # Worked example
//!
//! `swap_mem=512 swap_factor=2` parses to a `Settings` whose `get` gives, among others,
//! `swap_mem=512 swap_factor=2 swap_accesses=4096`; that string parses to the same `Settings`.
#![no_main]

use kopts::{DIR_ENTRY_LEN, FwCfgFile, OPTIONS, Options, Settings, Value, check_value, check_word};
use libfuzzer_sys::fuzz_target;

/// How [`Settings::parse`] splits the string into words.
fn words(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(|c: char| c.is_whitespace() || c == '\0').filter(|w| !w.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let raw: &str = &text;

    let mut refused = Vec::new();
    for word in words(raw) {
        match check_word(word) {
            Ok((row, value)) => {
                let (key, given) = word.split_once('=').expect("an accepted word has a value");
                assert_eq!(OPTIONS[row].key, key);
                assert_eq!(check_value(&OPTIONS[row], given), Ok(value), "{word:?}");
            }
            Err(e) => refused.push(e),
        }
    }

    match Settings::parse(raw) {
        Ok(settings) => {
            assert!(refused.is_empty(), "parse accepted a string with refused words: {refused:?}");
            let written: Vec<String> = OPTIONS
                .iter()
                .filter_map(|o| match settings.get(o.key).expect("every row's key reads back") {
                    Value::Unset => None,
                    v => Some(format!("{}={v}", o.key)),
                })
                .collect();
            let again = written.join(" ");
            assert_eq!(Settings::parse(&again), Ok(settings), "round trip through {again:?}");
        }
        Err(errors) => {
            if refused.is_empty() {
                assert_eq!(errors.len(), 1, "every word passed: exactly one combination error");
            } else {
                assert_eq!(errors, refused, "one error per refused word, in order");
            }
            for e in &errors {
                let _ = (e.to_string(), e.key());
            }
        }
    }

    let old = Options::new(raw);
    let _ = (old.is_empty(), old.iter().count(), old.get("swap_mem"), old.number("swap_mem", 1024));

    if let Some(entry) = data.get(..DIR_ENTRY_LEN).and_then(|e| <&[u8; DIR_ENTRY_LEN]>::try_from(e).ok()) {
        let file = FwCfgFile::parse(entry);
        assert!(file.name().len() <= 56);
    }
});
