//! Levelled logging to stderr, one write(2) per line. Secrets never reach these macros: callers log names,
//! paths, sizes and error kinds, never resource contents or key material.

use core::sync::atomic::{AtomicU8, Ordering};

/// Log levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Failures.
    Error = 0,
    /// Something the operator should know: insecure settings, retries.
    Warn = 1,
    /// Progress (the default).
    Info = 2,
    /// Details for debugging.
    Debug = 3,
}

impl Level {
    /// Parses `error|warn|info|debug` (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level that is printed.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether `level` is printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// The binaries that log through this module; each names itself once, first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Program {
    /// The guest agent.
    Sealgate = 0,
    /// The operator's host tool.
    Sealctl = 1,
}

static PROGRAM: AtomicU8 = AtomicU8::new(Program::Sealgate as u8);

/// Sets the program name that starts every line.
pub fn set_program(program: Program) {
    PROGRAM.store(program as u8, Ordering::Relaxed);
}

/// The name this program logs under.
pub fn program() -> &'static str {
    if PROGRAM.load(Ordering::Relaxed) == Program::Sealctl as u8 {
        "sealctl"
    } else {
        "sealgate"
    }
}

/// Prints one line (use the macros).
pub fn write(level: Level, args: core::fmt::Arguments<'_>) {
    if enabled(level) {
        crate::eprintln!("{}: {}: {}", program(), level.name(), args);
    }
}

/// Logs an error (`format!` syntax).
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) } }
/// Logs a warning (`format!` syntax).
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Logs an informational line (`format!` syntax).
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
/// Logs a debug line (`format!` syntax).
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } }
