//! The shell's commands: one table ([`COMMANDS`]) that `help` prints, and [`parse`], which checks a line
//! against it. Words are separated by spaces; the first names the command.
//!
//! | line | result |
//! |---|---|
//! | `swap 100` | `Ok(Some(Command::Swap(100)))` |
//! | `` (empty, or only spaces) | `Ok(None)`: nothing to do |
//! | `frob` | `Err(ParseError::Unknown("frob"))` |
//! | `swap` | `Err(ParseError::Missing { command: "swap", .. })` |
//! | `swap x` / `swap 0` | `Err(ParseError::BadNumber { .. })` |
//! | `mem 3` | `Err(ParseError::Extra { command: "mem", .. })` |
//! | `trace maybe` | `Err(ParseError::BadWord { .. })` |

use core::fmt;

/// Most steps one `swap N` or `files N` may ask for (a lesson runs in small steps; a typo of many zeros
/// should not occupy the machine for an hour).
pub const STEPS_MAX: u64 = 100_000;

/// What `trace` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceArg {
    /// Trace the page chosen at boot (`trace=page:N`), or page 0 if none was.
    On,
    Off,
    /// Trace swap-workload page N from now on.
    Page(u64),
}

/// One command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Help,
    Mem,
    Pools,
    Tmem,
    /// Run this many steps (accesses) of the swap workload.
    Swap(u64),
    /// Run this many operations of the file workload.
    Files(u64),
    Compact,
    Trace(TraceArg),
    Stats,
    Cpus,
    Exit,
}

/// A row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    /// The arguments, as `help` shows them (empty: none).
    pub args: &'static str,
    pub help: &'static str,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "help", args: "", help: "this list" },
    CommandSpec { name: "mem", args: "", help: "frames: free blocks by order, frames by owner" },
    CommandSpec { name: "pools", args: "", help: "each tmem pool's allocator; zsmalloc per size class" },
    CommandSpec { name: "tmem", args: "", help: "tmem: limit, each pool's kind, objects and pages, counters" },
    CommandSpec { name: "swap", args: "N", help: "run N accesses of the swap workload (state kept between commands)" },
    CommandSpec { name: "files", args: "N", help: "run N operations of the file workload over cleancache" },
    CommandSpec { name: "compact", args: "", help: "compact every zsmalloc pool; frames freed" },
    CommandSpec {
        name: "trace",
        args: "on|off|page N",
        help: "follow one swap page (and cleancache's pages of one file)",
    },
    CommandSpec { name: "stats", args: "", help: "one @@stats line (the report's typed structs)" },
    CommandSpec { name: "cpus", args: "", help: "CPUs up, their APIC ids, per-CPU frame lists" },
    CommandSpec { name: "exit", args: "", help: "end the workloads, check them, print the report, power off" },
];

/// Why a line is not a command. `Display` gives the message the shell prints after `error: `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// The first word is no command.
    Unknown(&'a str),
    /// The command needs an argument that is not there.
    Missing { command: &'static str, what: &'static str },
    /// A number argument is not a decimal number in `1..=max`.
    BadNumber { command: &'static str, arg: &'a str, max: u64 },
    /// A word argument is not one of `expected`.
    BadWord { command: &'static str, arg: &'a str, expected: &'static str },
    /// More words than the command takes.
    Extra { command: &'static str, arg: &'a str },
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::Unknown(w) => write!(f, "unknown command `{w}` (`help` lists the commands)"),
            ParseError::Missing { command, what } => write!(f, "`{command}` needs {what}"),
            ParseError::BadNumber { command, arg, max } => {
                write!(f, "`{command} {arg}`: the argument must be a number from 1 to {max}")
            }
            ParseError::BadWord { command, arg, expected } => {
                write!(f, "`{command} {arg}`: the argument must be {expected}")
            }
            ParseError::Extra { command, arg } => write!(f, "`{command}` takes no argument `{arg}`"),
        }
    }
}

fn number<'a>(command: &'static str, arg: &'a str, max: u64) -> Result<u64, ParseError<'a>> {
    let bad = ParseError::BadNumber { command, arg, max };
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match arg.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad),
    }
}

/// The command a line asks for; `Ok(None)` for a blank line.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError<'_>> {
    let mut words = line.split_ascii_whitespace();
    let Some(first) = words.next() else { return Ok(None) };
    let spec = COMMANDS.iter().find(|c| c.name == first).ok_or(ParseError::Unknown(first))?;
    let command = spec.name;
    let mut next = |what| words.next().ok_or(ParseError::Missing { command, what });
    let cmd = match command {
        "help" => Command::Help,
        "mem" => Command::Mem,
        "pools" => Command::Pools,
        "tmem" => Command::Tmem,
        "compact" => Command::Compact,
        "stats" => Command::Stats,
        "cpus" => Command::Cpus,
        "exit" => Command::Exit,
        "swap" => Command::Swap(number(command, next("N, the number of accesses")?, STEPS_MAX)?),
        "files" => Command::Files(number(command, next("N, the number of operations")?, STEPS_MAX)?),
        "trace" => match next("`on`, `off` or `page N`")? {
            "on" => Command::Trace(TraceArg::On),
            "off" => Command::Trace(TraceArg::Off),
            "page" => {
                let n = next("N after `page`, the swap page to follow")?;
                // Page 0 is a page too: the range check here is only "a number"; the kernel checks it
                // against the region.
                match n.bytes().all(|b| b.is_ascii_digit()).then(|| n.parse::<u64>().ok()).flatten() {
                    Some(p) => Command::Trace(TraceArg::Page(p)),
                    None => return Err(ParseError::BadWord { command, arg: n, expected: "a page number" }),
                }
            }
            other => return Err(ParseError::BadWord { command, arg: other, expected: "`on`, `off` or `page N`" }),
        },
        // Every name in COMMANDS has an arm above; the test `every_command_parses` holds that.
        _ => return Err(ParseError::Unknown(first)),
    };
    match words.next() {
        Some(arg) => Err(ParseError::Extra { command, arg }),
        None => Ok(Some(cmd)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        for c in COMMANDS {
            let line = match c.args {
                "" => c.name.to_string(),
                "N" => format!("{} 5", c.name),
                _ => format!("{} on", c.name),
            };
            assert!(parse(&line).unwrap().is_some(), "{line}");
        }
    }

    #[test]
    fn the_module_table() {
        assert_eq!(parse("swap 100"), Ok(Some(Command::Swap(100))));
        assert_eq!(parse("  files   7 "), Ok(Some(Command::Files(7))));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(parse("frob"), Err(ParseError::Unknown("frob")));
        assert!(matches!(parse("swap"), Err(ParseError::Missing { command: "swap", .. })));
        assert!(matches!(parse("swap x"), Err(ParseError::BadNumber { command: "swap", arg: "x", .. })));
        assert!(matches!(parse("swap 0"), Err(ParseError::BadNumber { .. })));
        assert!(matches!(parse("swap -1"), Err(ParseError::BadNumber { .. })));
        assert!(matches!(parse("swap +1"), Err(ParseError::BadNumber { .. })));
        assert!(matches!(parse("swap 100001"), Err(ParseError::BadNumber { max: STEPS_MAX, .. })));
        assert!(matches!(parse("swap 99999999999999999999999"), Err(ParseError::BadNumber { .. })));
        assert_eq!(parse("mem 3"), Err(ParseError::Extra { command: "mem", arg: "3" }));
        assert_eq!(parse("swap 3 4"), Err(ParseError::Extra { command: "swap", arg: "4" }));
        assert!(matches!(parse("trace maybe"), Err(ParseError::BadWord { command: "trace", .. })));
        assert!(matches!(parse("trace"), Err(ParseError::Missing { command: "trace", .. })));
        assert_eq!(parse("trace on"), Ok(Some(Command::Trace(TraceArg::On))));
        assert_eq!(parse("trace off"), Ok(Some(Command::Trace(TraceArg::Off))));
        assert_eq!(parse("trace page 0"), Ok(Some(Command::Trace(TraceArg::Page(0)))));
        assert!(matches!(parse("trace page x"), Err(ParseError::BadWord { .. })));
        assert!(matches!(parse("trace page"), Err(ParseError::Missing { .. })));
        // Names are case-sensitive, as in a Unix shell.
        assert_eq!(parse("MEM"), Err(ParseError::Unknown("MEM")));
    }

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            parse("swap abc").unwrap_err().to_string(),
            "`swap abc`: the argument must be a number from 1 to 100000"
        );
        assert_eq!(parse("frob").unwrap_err().to_string(), "unknown command `frob` (`help` lists the commands)");
        assert_eq!(parse("swap").unwrap_err().to_string(), "`swap` needs N, the number of accesses");
    }

    #[test]
    fn random_lines_never_panic() {
        let words = ["swap", "files", "trace", "page", "on", "off", "1", "0", "x", "mem", "", "99999999", "-"];
        let mut x: u32 = 7;
        for _ in 0..20_000 {
            let mut line = String::new();
            for _ in 0..(x % 4) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                line.push_str(words[(x >> 16) as usize % words.len()]);
                line.push(' ');
            }
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = parse(&line);
        }
    }
}
