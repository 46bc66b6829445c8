//! `sealctl keygen`: an ES256 signing key pair as JWK files, like upstream's
//! `secret keygen` (same file names, members and layout).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sealgate_core::sealed::SigningJwk;

use crate::args::{self, Failure};
use crate::{info, shell};

const COMMAND: &str = "keygen";

const HELP: &str = "\
Usage: sealctl keygen [--kid KID] [--output-dir DIR]

Generate an EC P-256 key pair for signing sealed secrets (ES256) and write it as
JWKs (members kty, crv, alg=ES256, use=sig, kid, [d,] x, y) to
  DIR/KID-private.json   the signing key, mode 0600: keep it on the operator host
  DIR/KID-public.json    the verification key: provision it to the guest, either as
                         a KBS resource (and seal with --kid kbs:///<repo>/<type>/<tag>)
                         or as the local key file <KID> of the guest's key directory
Existing files are never overwritten.

Options:
      --kid KID          Key id written into the JWKs and used in the file names
                         [default: sealed-signing]
      --output-dir DIR   Directory to write the files to [default: .]
  -h, --help             Show this help
";

pub fn run(argv: &[String]) -> Result<(), Failure> {
    let parsed = args::parse(COMMAND, argv, &["--kid", "--output-dir"])?;
    if parsed.help {
        print!("{HELP}");
        return Ok(());
    }
    if let Some(extra) = parsed.positionals.first() {
        return Err(Failure::usage(
            COMMAND,
            format!("unexpected argument '{}'", crate::show(extra)),
        ));
    }
    let kid = parsed.value("--kid").unwrap_or("sealed-signing");
    if kid.is_empty()
        || kid == "."
        || kid == ".."
        || kid.contains('/')
        || kid.chars().any(char::is_control)
    {
        return Err(Failure::usage(
            COMMAND,
            "--kid is also the file name prefix: it must be non-empty and contain no '/' \
             or control characters (seal with a KBS resource URI kid via 'seal --kid')",
        ));
    }
    let dir = Path::new(parsed.value("--output-dir").unwrap_or("."));
    let private_path = dir.join(format!("{kid}-private.json"));
    let public_path = dir.join(format!("{kid}-public.json"));
    for path in [&private_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(Failure::failed(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
    }

    let key = SigningJwk::generate(&mut shell::os_rng::os_rng());
    write_new(&private_path, 0o600, key.to_jwk_json(kid).as_bytes())?;
    if let Err(e) = write_new(
        &public_path,
        0o644,
        key.public().to_jwk_json(kid).as_bytes(),
    ) {
        let _ = std::fs::remove_file(&private_path);
        return Err(e);
    }
    println!("{}", private_path.display());
    println!("{}", public_path.display());
    info!(
        "wrote the signing key {} (mode 0600) and the verification key {}",
        private_path.display(),
        public_path.display()
    );
    Ok(())
}

/// Creates `path` (which must not exist) with `mode` and writes `data`.
fn write_new(path: &PathBuf, mode: u32, data: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::failed(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    let written = file.write_all(data).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(fail(e));
    }
    Ok(())
}
