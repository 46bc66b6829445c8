//! `sealctl initdata`: what an operator configures on the host for a given init-data
//! document (the digest, SNP HOST_DATA, TDX MRCONFIGID), and kata's init-data disk image.

use crate::args::{self, Failure};
use sealgate_core::b64;
use sealgate_core::initdata::{self, InitData, MAX_INITDATA_LEN};

const COMMAND: &str = "initdata";

const HELP: &str = "\
Usage: sealctl initdata digest FILE
       sealctl initdata image FILE OUTPUT

  digest   Validate an init-data TOML document and print its digest and the values the
           host binds it with: SNP HOST_DATA (32 bytes) and TDX MRCONFIGID (48 bytes), in hex
           and in the base64 form QEMU takes (sev-snp-guest,host-data=...;
           tdx-guest,mrconfigid=...). The digest is over the file's exact bytes.
  image    Write kata's init-data disk image for FILE (\"initdata\" magic, length, gzip,
           padded to 512 bytes) to OUTPUT, to attach read-only as a virtio disk.

Options:
  -h, --help   Show this help
";

pub fn run(argv: &[String]) -> Result<(), Failure> {
    let parsed = args::parse(COMMAND, argv, &[])?;
    if parsed.help {
        print!("{HELP}");
        return Ok(());
    }
    let pos: Vec<&str> = parsed.positionals.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["digest", file] => digest(file),
        ["image", file, output] => image(file, output),
        _ => Err(Failure::usage(
            COMMAND,
            "expected 'digest FILE' or 'image FILE OUTPUT'",
        )),
    }
}

fn load(file: &str) -> Result<(Vec<u8>, InitData), Failure> {
    let raw = crate::read_limited(file, MAX_INITDATA_LEN, "init-data")?;
    let parsed = InitData::parse(&raw).map_err(|e| Failure::failed(format!("{file}: {e}")))?;
    Ok((raw.to_vec(), parsed))
}

fn digest(file: &str) -> Result<(), Failure> {
    let (_, d) = load(file)?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    println!("algorithm:      {}", d.algorithm().as_str());
    println!("digest:         {}", hex(&d.digest()));
    println!("snp host_data:  {}", hex(&d.snp_host_data()));
    println!(
        "                base64 {}",
        b64::std_encode(&d.snp_host_data())
    );
    println!("tdx mrconfigid: {}", hex(&d.tdx_mrconfigid()));
    println!(
        "                base64 {}",
        b64::std_encode(&d.tdx_mrconfigid())
    );
    if let Ok(Some(kbs)) = d.kbs() {
        println!("kbs url:        {}", crate::show(&kbs.url));
    }
    Ok(())
}

fn image(file: &str, output: &str) -> Result<(), Failure> {
    let (raw, _) = load(file)?;
    std::fs::write(output, initdata::to_block_device(&raw))
        .map_err(|e| Failure::failed(format!("cannot write {output}: {e}")))
}
