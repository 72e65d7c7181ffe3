//! Host tests of [`Settings::parse`]: table-driven over [`OPTIONS`], so a new row is covered by every
//! generic test the moment it is added.
//!
//! # What is covered
//!
//! | test | per option | asserts |
//! |---|---|---|
//! | `every_bad_value_gets_its_exact_error` | every row, every bad kind that applies to it | the exact `OptionError` |
//! | `every_good_value_reaches_its_field` | min, max, default, a middle value / every word / a checksum | `Settings::get` gives it back |
//! | `defaults_are_applied` | every row, from `""` | the table's default, or a derived / unset value |
//! | `typed_fields_hold_the_given_values` | one string setting every option | each typed getter |
//!
//! and the rest: unknown and malformed keys, several errors at once, repeated keys, the derived values
//! and their overflow, the conflict, the one-line messages, and the old `KNOWN` list matching the table.
//!
//! # Worked example
//!
//! For the row `deflate_level` (`Number { min: 1, max: 10, default: Value(1) }`) the generic test tries
//! `deflate_level=` → `MissingValue`, `=abc` → `NotANumber`, `=-1` → `Negative`,
//! `=99999999999999999999` → `Overflow`, `=0` and `=11` → `OutOfRange { min: 1, max: 10 }`, and `=1`, `=10`,
//! `=5` → `Value::Number` of the same.

use crate::Trace as kopts_trace;
use crate::*;

fn errors(raw: &str) -> Vec<OptionError<'_>> {
    match Settings::parse(raw) {
        Ok(s) => panic!("{raw:?} was accepted: {s:?}"),
        Err(e) => e,
    }
}

fn one_error(raw: &str) -> OptionError<'_> {
    let e = errors(raw);
    assert_eq!(e.len(), 1, "{raw:?}: {e:?}");
    e[0]
}

fn ok(raw: &str) -> Settings {
    Settings::parse(raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e:?}"))
}

/// The `Value` that `key=word` leaves in `get(key)`, for the one alias the table has.
fn canonical(key: &str, word: &'static str) -> &'static str {
    match (key, word) {
        ("swap_pattern", "seq") => "sequential",
        _ => word,
    }
}

#[test]
fn every_bad_value_gets_its_exact_error() {
    for option in OPTIONS {
        let k = option.key;
        let bad = |v: &str| one_error(&format!("{k}={v}")).to_string();
        assert_eq!(one_error(&format!("{k}=")), OptionError::MissingValue { option }, "{k}=");
        assert_eq!(one_error(k), OptionError::MissingValue { option }, "bare {k}");
        // The error borrows the option string: leak it (a test) so errors can outlive the call.
        let e = |v: &str| -> OptionError<'static> { one_error(String::leak(format!("{k}={v}"))) };
        match option.kind {
            Kind::Number { min, max, .. } => {
                for v in ["abc", "12x", "+5", "0x10", "1_000", "1.5", "-", "--1", "١"] {
                    assert_eq!(e(v), OptionError::NotANumber { option, value: v }, "{k}={v}");
                }
                for v in ["-1", "-0", "-99999999999999999999"] {
                    assert_eq!(e(v), OptionError::Negative { option, value: v }, "{k}={v}");
                }
                for v in ["99999999999999999999", "18446744073709551616"] {
                    assert_eq!(e(v), OptionError::Overflow { option, value: v }, "{k}={v}");
                }
                let out = |value| OptionError::OutOfRange { option, value, min, max };
                if min > 0 {
                    assert_eq!(e(&(min - 1).to_string()), out(min - 1), "{k} below its min");
                }
                assert!(max < u64::MAX, "{k}: every range is bounded");
                assert_eq!(e(&(max + 1).to_string()), out(max + 1), "{k} above its max");
                assert_eq!(e("18446744073709551615"), out(u64::MAX), "{k}=u64::MAX");
                assert!(bad("abc").contains(&format!("(accepted: {min}..={max}, default ")), "{}", bad("abc"));
            }
            Kind::Enum { values, .. } => {
                let upper = values[0].to_uppercase();
                for v in ["bogus", "-1", "99999999999999999999", upper.as_str()] {
                    assert_eq!(e(v), OptionError::NotOneOf { option, value: v, values }, "{k}={v}");
                }
                assert!(bad("bogus").contains(&format!("(accepted: {}, default ", values.join("|"))));
            }
            Kind::Hex64 => {
                let too_short = "0123456789abcde";
                let too_long = "0123456789abcdef0";
                for v in ["xyz", too_short, too_long, "-123456789abcdef", "+123456789abcdef", "0x3456789abcdef0"] {
                    assert_eq!(e(v), OptionError::BadHex { option, value: v }, "{k}={v}");
                }
                assert_eq!(e("99999999999999999999"), OptionError::BadHex { option, value: "99999999999999999999" });
            }
            Kind::Trace => {
                for v in ["on", "page", "page:", "page:x", "page:-1", "page:+1", "file:", "page:1:2", "pages:3", "OFF"]
                {
                    assert_eq!(e(v), OptionError::BadTrace { option, value: v }, "{k}={v}");
                }
                assert_eq!(
                    e("page:99999999999999999999"),
                    OptionError::BadTrace { option, value: "page:99999999999999999999" }
                );
                assert!(bad("x").contains("(accepted: off|page:N|file:N, default off)"), "{}", bad("x"));
            }
        }
        let line = bad("-1");
        assert!(line.starts_with(&format!("option {k}=-1: ")) && !line.contains('\n'), "{line}");
    }
}

#[test]
fn every_good_value_reaches_its_field() {
    for option in OPTIONS {
        let k = option.key;
        // The worker counts take more than 1 only with their own workload (see below).
        let context = match k {
            "swap_cpus" => " workload=swap",
            "files_cpus" => " workload=files",
            _ => "",
        };
        let get = |v: &str| ok(&format!("{k}={v}{context}")).get(k);
        match option.kind {
            Kind::Number { min, max, default } => {
                let mut good = vec![min, max, min + (max - min) / 2];
                if let NumberDefault::Value(d) = default {
                    good.push(d);
                }
                for n in good {
                    assert_eq!(get(&n.to_string()), Some(Value::Number(n)), "{k}={n}");
                }
                assert_eq!(get(&format!("00{min}")), Some(Value::Number(min)), "{k}: leading zeros");
            }
            Kind::Enum { values, .. } => {
                for &w in values {
                    // `all` as swap pattern conflicts only with workload=all; the default is pools.
                    assert_eq!(get(w), Some(Value::Choice(canonical(k, w))), "{k}={w}");
                }
            }
            Kind::Trace => {
                assert_eq!(get("off"), Some(Value::Trace(kopts_trace::Off)));
                assert_eq!(get("page:0"), Some(Value::Trace(kopts_trace::Page(0))));
                assert_eq!(get("page:3071"), Some(Value::Trace(kopts_trace::Page(3071))));
                assert_eq!(get("file:12"), Some(Value::Trace(kopts_trace::File(12))));
            }
            Kind::Hex64 => {
                assert_eq!(get("0123456789abcdef"), Some(Value::Hex(0x0123_4567_89ab_cdef)));
                assert_eq!(get("FFFFFFFFFFFFFFFF"), Some(Value::Hex(u64::MAX)));
                assert_eq!(get("0000000000000000"), Some(Value::Hex(0)));
            }
        }
    }
}

#[test]
fn defaults_are_applied() {
    let s = ok("");
    for option in OPTIONS {
        let k = option.key;
        let v = s.get(k).unwrap_or_else(|| panic!("{k} has no field"));
        match option.kind {
            Kind::Enum { default, .. } => assert_eq!(v, Value::Choice(default), "{k}"),
            Kind::Number { default: NumberDefault::Value(d), .. } => assert_eq!(v, Value::Number(d), "{k}"),
            Kind::Number { default: NumberDefault::Derived(_), min, max } => {
                assert!(matches!(v, Value::Number(n) if (min..=max).contains(&n)) || v == Value::Unset, "{k}: {v:?}")
            }
            Kind::Number { default: NumberDefault::Off(_), .. } | Kind::Hex64 => assert_eq!(v, Value::Unset, "{k}"),
            Kind::Trace => assert_eq!(v, Value::Trace(kopts_trace::Off), "{k}"),
        }
    }
    assert_eq!(s.get("nothing"), None);
    // The derived defaults, resolved.
    assert_eq!(s.swap_region_pages(), 3 * 1024);
    assert_eq!(s.swap_accesses(), 4 * 3 * 1024);
    assert_eq!(s.swap_slots(), None, "all of the swap disk");
    assert_eq!(s.tmem_max_pool_percent(), TMEM_POOL_PERCENT_DEFAULT);
    assert_eq!(ok("workload=all").tmem_max_pool_percent(), TMEM_POOL_PERCENT_DEFAULT_ALL);
    assert_eq!(ok("workload=all tmem_max_pool_percent=30").tmem_max_pool_percent(), 30);
    assert_eq!(s.files_set_pages(), 192 * 4);
    assert_eq!((s.files_invalidate_every(), s.fail_frame_every(), s.corrupt_stored()), (Some(25), None, None));
    assert_eq!(s.fail_frame_schedule(), FailSchedule::Every);
    assert_eq!(ok("\0\n"), s, "fw_cfg's trailing NUL and white space are not options");
}

#[test]
fn several_workers_only_for_the_swap_and_file_demos() {
    assert_eq!(ok("workload=swap swap_cpus=4").swap_cpus(), 4);
    assert_eq!(ok("workload=files files_cpus=2").files_cpus(), 2);
    assert_eq!(ok("workload=all swap_cpus=1").swap_cpus(), 1, "1 is what every workload does anyway");
    for (given, key) in [
        ("workload=all swap_cpus=2", "swap_cpus"),
        ("workload=sweep swap_cpus=4", "swap_cpus"),
        ("swap_cpus=2", "swap_cpus"),
        ("workload=all files_cpus=3", "files_cpus"),
        ("workload=swap files_cpus=2", "files_cpus"),
    ] {
        let e = Settings::parse(given).unwrap_err();
        assert!(
            matches!(e.as_slice(), [OptionError::Conflict { option, value: "more than 1", .. }] if option.key == key),
            "{given}: {e:?}"
        );
    }
}

#[test]
fn typed_fields_hold_the_given_values() {
    let s = ok("loglevel=trace memmap=full ramdisk_fnv=00000000deadbeef workload=swap compressor=deflate \
                deflate_level=6 swap_pattern=seq swap_mem=512 swap_mode=fixed swap_device=zram swap_cache=exclusive swap_cpus=3 swap_sharing=split blk_fail_every=9 blk_fail_op=read blk_fail_kind=timeout swap_factor=2 swap_accesses=7 swap_slots=100 \
                swap_fresh=40 tmem=both tmem_max_pool_percent=50 files_cache=64 files_factor=8 files_ops=9 soak_seconds=5 \
                files_invalidate_every=0 cleancache=zsmalloc ephemeral_reclaim=zbud_frames zv_max_zsize=3000 \
                zv_max_mean_zsize=2000 zv_page_count_policy_percent=0 fail_frame_every=13 fail_frame_schedule=random corrupt_stored=3 \
                bench_stores=100 trace=page:7\0");
    assert_eq!(s.loglevel(), LogLevel::Trace);
    assert_eq!(s.memmap(), MemMap::Full);
    assert_eq!(s.ramdisk_fnv(), Some(0xdead_beef));
    assert_eq!(s.workload(), Workload::Swap);
    assert_eq!((s.compressor(), s.deflate_level()), (Compressor::Deflate, 6));
    assert_eq!(s.swap_pattern(), SwapPattern::Sequential);
    assert_eq!(
        (s.swap_mode(), s.swap_device(), s.swap_cache()),
        (SwapMode::Fixed, SwapDevice::Zram, SwapCacheMode::Exclusive)
    );
    assert_eq!((s.swap_mem(), s.swap_factor(), s.swap_region_pages()), (512, 2, 1024));
    assert_eq!((s.swap_cpus(), s.swap_sharing()), (3, SwapSharing::Split));
    assert_eq!((s.blk_fail_every(), s.blk_fail_op(), s.blk_fail_kind()), (9, BlkFailOp::Read, BlkFailKind::Timeout));
    assert_eq!((s.swap_accesses(), s.swap_slots(), s.swap_fresh()), (7, Some(100), Some(40)));
    assert_eq!((s.tmem(), s.tmem_max_pool_percent()), (TmemBackends::Both, 50));
    assert_eq!((s.files_cache(), s.files_factor(), s.files_set_pages(), s.files_ops()), (64, 8, 512, 9));
    assert_eq!(s.files_invalidate_every(), None, "0 = never");
    assert_eq!(s.cleancache(), Backend::Zsmalloc);
    assert_eq!(s.ephemeral_reclaim(), EphemeralReclaim::ZbudFrames);
    assert_eq!((s.zv_max_zsize(), s.zv_max_mean_zsize(), s.zv_page_count_policy_percent()), (3000, 2000, 0));
    assert_eq!(
        (s.fail_frame_every(), s.fail_frame_schedule(), s.corrupt_stored()),
        (Some(13), FailSchedule::Random, Some(3))
    );
    assert_eq!(s.bench_stores(), 100);
    assert_eq!(s.trace(), kopts_trace::Page(7));
    // Every option was given a non-default value above, so each field differs from the default's.
    let d = ok("");
    // files_cpus > 1 needs workload=files, and this string runs the swap workload: that option's value
    // is checked by `several_workers_only_for_the_swap_and_file_demos`.
    for o in OPTIONS.iter().filter(|o| o.key != "files_cpus") {
        assert_ne!(s.get(o.key), d.get(o.key), "{} was not set by the string above", o.key);
    }
}

#[test]
fn unknown_and_malformed_keys() {
    assert_eq!(
        one_error("swap_mme=5"),
        OptionError::UnknownKey { key: "swap_mme", value: Some("5"), suggestion: Some("swap_mem") }
    );
    assert_eq!(one_error("frobnicate"), OptionError::UnknownKey { key: "frobnicate", value: None, suggestion: None });
    for word in ["=5", "=", "Swap_budget=5", "swap/budget=1", "swäp=1"] {
        assert_eq!(one_error(word), OptionError::BadKey { word }, "{word}");
    }
    assert_eq!(one_error("swap_mme=5").to_string(), "option swap_mme=5: unknown option (did you mean swap_mem?)");
    let all = one_error("frobnicate=1").to_string();
    assert!(all.starts_with("option frobnicate=1: unknown option (accepted: loglevel, memmap, ramdisk_fnv, "), "{all}");
    assert!(all.ends_with(", corrupt_stored, bench_stores)"), "{all}");
    assert_eq!(one_error("=5").to_string(), "option =5: bad key (accepted: key=value, the key of a-z 0-9 _ . -)");
    assert_eq!(one_error("Bad=1").key(), "Bad");
}

#[test]
fn messages_name_the_option_the_value_and_what_is_accepted() {
    let cases = [
        ("swap_mem=abc", "option swap_mem=abc: not a number (accepted: 1..=1048576, default 1024)"),
        ("swap_mem=-3", "option swap_mem=-3: negative (accepted: 1..=1048576, default 1024)"),
        (
            "swap_mem=99999999999999999999",
            "option swap_mem=99999999999999999999: does not fit in 64 bits (accepted: 1..=1048576, default 1024)",
        ),
        ("swap_mem=0", "option swap_mem=0: out of range (accepted: 1..=1048576, default 1024)"),
        ("swap_mem", "option swap_mem: missing value (accepted: 1..=1048576, default 1024)"),
        ("swap_accesses=x", "option swap_accesses=x: not a number (accepted: 0..=4294967296, default 4 x swap region)"),
        (
            "tmem=zbd",
            "option tmem=zbd: not one of the values (accepted: zsmalloc|zbud|xvmalloc|xcfmalloc|both|all, default \
             zsmalloc)",
        ),
        ("ramdisk_fnv=abc", "option ramdisk_fnv=abc: not 16 hex digits (accepted: 16 hex digits, default none)"),
        ("corrupt_stored=0", "option corrupt_stored=0: out of range (accepted: 1..=1000000000, default off)"),
    ];
    for (raw, line) in cases {
        assert_eq!(one_error(raw).to_string(), line);
    }
}

#[test]
fn every_bad_word_is_reported_in_order() {
    let e = errors("swap_mem=abc loglevel=debug frob=1 deflate_level=0 tmem=zbd");
    let row = |k| spec(k).unwrap();
    assert_eq!(
        e,
        vec![
            OptionError::NotANumber { option: row("swap_mem"), value: "abc" },
            OptionError::UnknownKey { key: "frob", value: Some("1"), suggestion: None },
            OptionError::OutOfRange { option: row("deflate_level"), value: 0, min: 1, max: 10 },
            OptionError::NotOneOf { option: row("tmem"), value: "zbd", values: TmemBackends::NAMES },
        ]
    );
    assert_eq!(e.iter().map(|e| e.key()).collect::<Vec<_>>(), ["swap_mem", "frob", "deflate_level", "tmem"]);
}

#[test]
fn a_repeated_key_is_checked_each_time_and_the_last_wins() {
    assert_eq!(ok("swap_mem=5 swap_mem=6").swap_mem(), 6);
    assert_eq!(ok("workload=swap workload=files").workload(), Workload::Files);
    let row = spec("swap_mem").unwrap();
    assert_eq!(one_error("swap_mem=abc swap_mem=6"), OptionError::NotANumber { option: row, value: "abc" });
    assert_eq!(one_error("swap_mem=6 swap_mem=abc"), OptionError::NotANumber { option: row, value: "abc" });
}

#[test]
fn derived_values_are_checked_at_parse_time() {
    // The region limit exactly: 2^20 x 64 = 2^26 pages.
    let s = ok("swap_mem=1048576 swap_factor=64");
    assert_eq!(s.swap_region_pages(), SWAP_REGION_MAX_PAGES);
    assert_eq!(s.swap_accesses(), 4 * SWAP_REGION_MAX_PAGES);
    let over = OptionError::DerivedOverflow {
        what: "swap region pages",
        formula: "swap_mem x swap_factor",
        operands: [1_048_576, 65],
        max: SWAP_REGION_MAX_PAGES,
    };
    assert_eq!(one_error("swap_mem=1048576 swap_factor=65"), over);
    assert_eq!(
        over.to_string(),
        "options swap_mem x swap_factor = 1048576 x 65: swap region pages above 67108864 (accepted: a product of \
         at most 67108864)"
    );
    // Given accesses are not derived, so the limit of the default does not apply to them.
    assert_eq!(ok("swap_mem=1048576 swap_factor=64 swap_accesses=4294967296").swap_accesses(), 1 << 32);
    // The biggest file set the ranges allow still fits.
    assert_eq!(ok("files_cache=1048576 files_factor=1024").files_set_pages(), 1 << 30);
}

#[test]
fn swap_pattern_all_conflicts_with_workload_all() {
    let e = one_error("workload=all swap_pattern=all");
    assert_eq!(
        e,
        OptionError::Conflict {
            option: spec("swap_pattern").unwrap(),
            value: "all",
            with: "workload=all",
            accepted: "sequential|seq|random|zipf",
        }
    );
    assert_eq!(
        e.to_string(),
        "option swap_pattern=all: not with workload=all (accepted there: sequential|seq|random|zipf)"
    );
    assert_eq!(ok("workload=all swap_pattern=random").swap_pattern(), SwapPattern::Random);
    assert_eq!(ok("workload=swap swap_pattern=all").swap_pattern(), SwapPattern::All);
}

#[test]
fn tmem_limit_is_a_percentage_without_overflow() {
    assert_eq!(ok("").tmem_limit_pages(65_536), 13_107, "20 % of 65536, rounded down");
    assert_eq!(ok("tmem_max_pool_percent=100").tmem_limit_pages(u64::MAX), u64::MAX);
    assert_eq!(ok("tmem_max_pool_percent=1").tmem_limit_pages(99), 0);
    assert_eq!(ok("tmem_max_pool_percent=50").tmem_limit_pages(u64::MAX), u64::MAX / 2);
}

#[test]
fn known_is_the_table() {
    assert_eq!(KNOWN.len(), OPTIONS.len());
    for (k, o) in KNOWN.iter().zip(OPTIONS) {
        assert_eq!((k.key, k.help), (o.key, o.help));
        match o.kind {
            Kind::Enum { values, .. } => assert_eq!(k.values, values),
            _ => assert!(k.values.is_empty()),
        }
    }
}
