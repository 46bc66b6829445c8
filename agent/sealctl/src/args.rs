//! A small hand-written option parser: `--name VALUE`, `--name=VALUE`, `--`, and
//! positionals. Every option takes a value and may be given once.

use std::collections::BTreeMap;

/// How the command line failed; all of these exit with status 2.
#[derive(Debug)]
pub enum Failure {
    /// Bad command line (the message names the subcommand for the `--help` hint).
    Usage {
        /// Subcommand path for the hint, such as `seal vault`.
        command: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A runtime failure (exit status 1).
    Failed(String),
}

impl Failure {
    pub fn usage(command: &'static str, message: impl Into<String>) -> Self {
        Failure::Usage {
            command,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Failure::Failed(message.into())
    }
}

/// The parsed command line of one subcommand.
pub struct Parsed {
    pub help: bool,
    values: BTreeMap<&'static str, String>,
    pub positionals: Vec<String>,
}

impl Parsed {
    /// The value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Parses `args` (after the subcommand) against `opts`. `-h`/`--help` anywhere before
/// `--` sets `help` and stops parsing.
pub fn parse(
    command: &'static str,
    args: &[String],
    opts: &[&'static str],
) -> Result<Parsed, Failure> {
    let mut parsed = Parsed {
        help: false,
        values: BTreeMap::new(),
        positionals: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            parsed.positionals.extend(iter.cloned());
            break;
        }
        if arg == "-h" || arg == "--help" {
            parsed.help = true;
            return Ok(parsed);
        }
        if arg == "-" || !arg.starts_with('-') {
            parsed.positionals.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        let Some(&name) = opts.iter().find(|&&o| o == name) else {
            return Err(Failure::usage(command, format!("unknown option '{name}'")));
        };
        if parsed.values.contains_key(name) {
            return Err(Failure::usage(
                command,
                format!("option '{name}' given more than once"),
            ));
        }
        let value = match inline {
            Some(value) => value.to_string(),
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| Failure::usage(command, format!("option '{name}' needs a value")))?,
        };
        parsed.values.insert(name, value);
    }
    Ok(parsed)
}

/// `value` of a required option.
pub fn required<'a>(
    command: &'static str,
    parsed: &'a Parsed,
    name: &'static str,
) -> Result<&'a str, Failure> {
    parsed
        .value(name)
        .ok_or_else(|| Failure::usage(command, format!("missing required option '{name}'")))
}
