//! `sealctl initdata`: writing an init-data document (with sealgate's own settings as its
//! `sealgate.toml`), what an operator configures on the host for it (the digest, SNP
//! HOST_DATA, TDX MRCONFIGID), and kata's init-data disk image.

use crate::args::{self, Failure};
use sealgate_core::b64;
use sealgate_core::config;
use sealgate_core::initdata::{self, InitData, MAX_INITDATA_LEN, SEALGATE_TOML};
use sealgate_core::rcar::HashAlgorithm;
use sealgate_core::trust::{self, Source};

const COMMAND: &str = "initdata";

const HELP: &str = "\
Usage: sealctl initdata new [--algorithm ALG] [--sealgate-toml FILE]
                            [--kbs-url URL [--kbs-cert PEM]]
                            [--aa-toml FILE] [--cdh-toml FILE] OUTPUT
       sealctl initdata digest FILE
       sealctl initdata image FILE OUTPUT

  new      Write an init-data TOML document to OUTPUT: version 0.1.0, the algorithm
           (sha256, sha384 (default) or sha512), and its [data] entries: sealgate.toml
           (sealgate's own settings, in its config file's format: resources, owner, mode,
           [init] next_init/on_failure/mode, ...; checked here, and keys that init-data
           cannot set are named), aa.toml and cdh.toml from files, or with --kbs-url (or
           --kbs) both of them naming the KBS: aa.toml [token_configs.kbs] url and cdh.toml
           [kbc] name = \"cc_kbc\", url. --kbs-cert PEM adds the KBS's certificate to both
           (aa.toml cert, cdh.toml kbs_cert): sealgate then connects over HTTPS with it as the
           trust anchor and exact pin, and refuses an http:// URL. Prints the digest (as
           digest does). Then run image on it, or bind the digest.

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
    let parsed = args::parse(
        COMMAND,
        argv,
        &[
            "--algorithm",
            "--sealgate-toml",
            "--kbs",
            "--kbs-url",
            "--kbs-cert",
            "--aa-toml",
            "--cdh-toml",
        ],
    )?;
    if parsed.help {
        print!("{HELP}");
        return Ok(());
    }
    let pos: Vec<&str> = parsed.positionals.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["new", output] => new(&parsed, output),
        ["digest", file] => digest(file),
        ["image", file, output] => image(file, output),
        _ => Err(Failure::usage(
            COMMAND,
            "expected 'new OUTPUT', 'digest FILE' or 'image FILE OUTPUT'",
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
        if let Some(cert) = &kbs.cert {
            println!(
                "kbs cert:       PEM, {} certificate(s)",
                cert.matches(PEM_BEGIN).count()
            );
        }
    }
    Ok(())
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// Reads `--kbs-cert`: PEM certificates only, each block's body base64 (the guest checks
/// the rest; a mistake caught here is one less boot). Returns the text, normalised to end
/// in a newline.
fn read_kbs_cert(file: &str) -> Result<String, Failure> {
    let raw = crate::read_limited(file, 256 << 10, "KBS certificate")?;
    let text = std::str::from_utf8(&raw)
        .map_err(|_| Failure::failed(format!("{file}: not a PEM file (not UTF-8)")))?;
    let mut blocks = 0;
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, PEM_BEGIN) => body = Some(String::new()),
            (None, l) if l.starts_with("-----BEGIN") => {
                return Err(Failure::failed(format!(
                    "{file}: holds something other than certificates ({l}): give the KBS's \
                     certificate (or its CA's), never a key"
                )));
            }
            (Some(b), "-----END CERTIFICATE-----") => {
                if b.is_empty() || b64::std_decode(b).is_err() {
                    return Err(Failure::failed(format!(
                        "{file}: certificate {} is not valid base64",
                        blocks + 1
                    )));
                }
                blocks += 1;
                body = None;
            }
            (Some(b), l) => b.push_str(l),
            (None, _) => {}
        }
    }
    if blocks == 0 || body.is_some() {
        return Err(Failure::failed(format!(
            "{file}: no complete PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
        )));
    }
    let mut text = text.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// A TOML string holding PEM text: a multi-line basic string (readable) when the text is
/// plain PEM, else an escaped basic string.
fn pem_string(pem: &str) -> String {
    let plain = pem
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=- \n".contains(c));
    if plain {
        format!("\"\"\"\n{pem}\"\"\"")
    } else {
        basic_string(pem)
    }
}

fn image(file: &str, output: &str) -> Result<(), Failure> {
    let (raw, _) = load(file)?;
    std::fs::write(output, initdata::to_block_device(&raw))
        .map_err(|e| Failure::failed(format!("cannot write {output}: {e}")))
}

/// `sealctl initdata new`.
fn new(parsed: &args::Parsed, output: &str) -> Result<(), Failure> {
    let algorithm = parsed.value("--algorithm").unwrap_or("sha384");
    if HashAlgorithm::parse(algorithm).is_none() {
        return Err(Failure::usage(
            COMMAND,
            format!(
                "unknown algorithm '{}' (sha256, sha384 or sha512)",
                algorithm.escape_debug()
            ),
        ));
    }
    let read = |name: &str| -> Result<Option<String>, Failure> {
        parsed
            .value(name)
            .map(|file| {
                let raw =
                    crate::read_limited(file, MAX_INITDATA_LEN, name.trim_start_matches('-'))?;
                String::from_utf8(raw.to_vec())
                    .map_err(|_| Failure::failed(format!("{file}: not UTF-8")))
            })
            .transpose()
    };
    let mut entries: Vec<(&str, String)> = Vec::new();
    let url = match (parsed.value("--kbs"), parsed.value("--kbs-url")) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                COMMAND,
                "--kbs and --kbs-url are the same option: give one",
            ));
        }
        (a, b) => a.or(b),
    };
    let cert = parsed.value("--kbs-cert").map(read_kbs_cert).transpose()?;
    let aa = read("--aa-toml")?;
    let cdh = read("--cdh-toml")?;
    match url {
        Some(url) => {
            if aa.is_some() || cdh.is_some() {
                return Err(Failure::usage(
                    COMMAND,
                    "--kbs-url writes aa.toml and cdh.toml: give either --kbs-url or --aa-toml/--cdh-toml",
                ));
            }
            let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            match (scheme.as_deref(), &cert) {
                (Some("http"), Some(_)) => {
                    return Err(Failure::usage(
                        COMMAND,
                        "--kbs-cert needs an https:// URL: sealgate refuses http:// when a KBS certificate is configured",
                    ));
                }
                (Some("https"), None) => crate::warn!(
                    "{} is https:// without --kbs-cert: the image must then configure kbs_cert or kbs_ca_bundle, or sealgate refuses it",
                    crate::show(url)
                ),
                (Some("http" | "https"), _) => {}
                _ => {
                    return Err(Failure::usage(
                        COMMAND,
                        format!(
                            "KBS URL '{}' must start with http:// or https://",
                            crate::show(url)
                        ),
                    ));
                }
            }
            let mut aa = format!("[token_configs.kbs]\nurl = {}\n", basic_string(url));
            let mut cdh = format!("[kbc]\nname = \"cc_kbc\"\nurl = {}\n", basic_string(url));
            if let Some(pem) = &cert {
                aa.push_str(&format!("cert = {}\n", pem_string(pem)));
                cdh.push_str(&format!("kbs_cert = {}\n", pem_string(pem)));
            }
            entries.push(("aa.toml", aa));
            entries.push(("cdh.toml", cdh));
        }
        None => {
            if cert.is_some() {
                return Err(Failure::usage(COMMAND, "--kbs-cert needs --kbs-url"));
            }
            if let Some(text) = aa {
                entries.push(("aa.toml", text));
            }
            if let Some(text) = cdh {
                entries.push(("cdh.toml", text));
            }
        }
    }
    if let Some(text) = read("--sealgate-toml")? {
        let file = parsed.value("--sealgate-toml").unwrap_or_default();
        let settings =
            config::parse_file(&text).map_err(|e| Failure::failed(format!("{file}: {e}")))?;
        let (_, ignored) = trust::filter(settings, Source::InitData, false);
        for i in ignored {
            crate::warn!("{file}: sealgate will be {i}");
        }
        entries.push((SEALGATE_TOML, text));
    }
    let doc = document(algorithm, &entries);
    // What sealgate reads back must be exactly what was given.
    let check = InitData::parse(doc.as_bytes())
        .map_err(|e| Failure::failed(format!("the document written would not parse: {e}")))?;
    for (name, text) in &entries {
        if check.entry(name) != Some(text.as_str()) {
            return Err(Failure::failed(format!(
                "{name} does not survive as an init-data entry"
            )));
        }
    }
    let kbs = check
        .kbs()
        .map_err(|e| Failure::failed(format!("the document written would not parse: {e}")))?;
    if let (Some(pem), Some(kbs)) = (&cert, &kbs)
        && kbs.cert.as_deref() != Some(pem.as_str())
    {
        return Err(Failure::failed(
            "the KBS certificate does not survive as an init-data entry",
        ));
    }
    std::fs::write(output, doc)
        .map_err(|e| Failure::failed(format!("cannot write {output}: {e}")))?;
    println!("wrote {output}");
    digest(output)
}

/// An init-data document: version, algorithm, and `[data]` entries as TOML literal
/// multi-line strings (what kata's examples use) where the text allows it.
fn document(algorithm: &str, entries: &[(&str, String)]) -> String {
    let mut doc = format!("version = \"0.1.0\"\nalgorithm = \"{algorithm}\"\n\n[data]\n");
    for (name, text) in entries {
        let literal_ok = !text.contains("'''")
            && !text.ends_with('\'')
            && !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t');
        let value = if literal_ok {
            // The newline right after the opening delimiter is not part of the string.
            format!("'''\n{text}'''")
        } else {
            basic_string(text)
        };
        doc.push_str(&format!("{} = {value}\n", basic_string(name)));
    }
    doc
}

/// A TOML basic string (`"..."`) holding `s` exactly.
fn basic_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_whatever_the_text() {
        for text in [
            "owner = \"1000:1000\"\n",
            "a = '''x'''\n",
            "tab\there\r\n",
            "ends with a quote'",
            "",
        ] {
            let doc = document("sha256", &[(SEALGATE_TOML, text.to_string())]);
            let d = InitData::parse(doc.as_bytes()).unwrap();
            assert_eq!(d.entry(SEALGATE_TOML), Some(text), "{doc}");
        }
        assert_eq!(basic_string("a\"b\\c\u{1b}"), "\"a\\\"b\\\\c\\u001B\"");
    }
}
