//! Times opening a LUKS2 volume with sealgate-core, KDF included: the figures of the
//! README's "LUKS2 volumes" section.
//!
//! ```sh
//! cargo run --release -p sealgate-core --example luks2_open -- IMAGE PASSPHRASE_FILE [RUNS]
//! ```
//!
//! Reads the header and keyslot areas from IMAGE (a file or block device made by
//! `cryptsetup luksFormat --type luks2`), opens it RUNS times (default 3) with the default
//! KDF limits, and prints the keyslot's KDF and the median and spread of the times. The
//! release profile is the guest binary's (opt-level "z"), so the numbers are the guest's.

use sealgate_core::volume::kdf::KdfLimits;
use sealgate_core::volume::luks2::{self, Header};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: luks2_open IMAGE PASSPHRASE_FILE [RUNS]");
        std::process::exit(2);
    }
    let runs: usize = args
        .get(3)
        .map_or(3, |r| r.parse().expect("RUNS is a number"));
    let mut file = File::open(&args[1]).expect("open IMAGE");
    let device_size = file.metadata().expect("stat IMAGE").len();
    let mut pass = Vec::new();
    File::open(&args[2])
        .and_then(|mut f| f.read_to_end(&mut pass))
        .expect("read PASSPHRASE_FILE");
    let mut times = Vec::new();
    let mut kdf = String::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut start = vec![0u8; 4096];
        file.read_exact_at(&mut start, 0).expect("read header");
        let mut metadata = vec![0u8; luks2::metadata_read_len(&start, device_size) as usize];
        file.read_exact_at(&mut metadata, 0).expect("read metadata");
        let header = Header::parse(&metadata, device_size).unwrap_or_else(|e| panic!("{e}"));
        let opened = luks2::open(&header, &pass, &KdfLimits::DEFAULT, |offset, len| {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        let ks = header.keyslot(opened.slot).expect("opened slot");
        kdf = match &ks.kdf {
            sealgate_core::volume::kdf::Kdf::Pbkdf2 {
                hash, iterations, ..
            } => {
                format!("pbkdf2-{} {iterations} iterations", hash.name())
            }
            sealgate_core::volume::kdf::Kdf::Argon2 {
                time,
                memory_kib,
                parallel,
                ..
            } => format!(
                "{} time {time}, memory {memory_kib} KiB, {parallel} lanes",
                ks.kdf.name()
            ),
        };
    }
    let _ = file.read(&mut [0u8; 0]);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{kdf}: median {:.1} ms (min {:.1}, max {:.1}, {runs} runs)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
