//! `mkinitramfs`: see `mkinitramfs --help` and `image/README.md`.
#![forbid(unsafe_code)]

use sealgate_image::build::{self, Built};
use sealgate_image::spec::{self, Command};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match spec::parse_args(&args) {
        Ok(Command::Help) => {
            print!("{}", spec::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::List(image)) => list(&image),
        Ok(Command::Build(spec)) => run(&spec),
        Err(e) => {
            eprintln!("mkinitramfs: {e}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkinitramfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(image: &Path) -> Result<(), String> {
    let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut out = std::io::stdout().lock();
    for line in build::list(&bytes)? {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run(spec: &spec::Spec) -> Result<(), String> {
    let output = spec
        .output
        .clone()
        .ok_or("no output given (--output IMAGE)")?;
    let built: Built = build::build(spec, &build::default_modinfo)?;
    for w in &built.warnings {
        eprintln!("mkinitramfs: warning: {w}");
    }
    // Write next to the target, then rename: a reader never sees half an image.
    let tmp = output.with_extension("mkinitramfs-tmp");
    std::fs::write(&tmp, &built.bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &output).map_err(|e| format!("{}: {e}", output.display()))?;
    println!("image   {}", output.display());
    println!("size    {}", built.bytes.len());
    println!("sha256  {}", built.sha256());
    println!(
        "entries {} (cpio {} bytes{})",
        built.entries,
        built.cpio_len,
        built
            .kernel_release
            .as_deref()
            .map(|r| format!(", modules for {r}"))
            .unwrap_or_default()
    );
    Ok(())
}
