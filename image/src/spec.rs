//! What goes into an image: command-line flags and manifest files.
//!
//! A manifest has one setting per line, `KEY VALUE`, where KEY is a long flag without
//! its dashes; `#` starts a comment line. Relative paths in a manifest are relative to
//! the manifest's directory. Flags given after `--manifest` override its single-valued
//! settings and add to its lists.
//!
//! ```text
//! # qemu/test-image.manifest
//! sealgate      ../target/x86_64-unknown-linux-gnu/release/sealgate
//! config        sealgate.toml
//! modules-dir   ../target/kernel/lib/modules/6.12.43+deb12-cloud-amd64
//! module        virtio_net
//! module        ../target/tsm_sim/tsm_sim.ko provider=sev_guest
//! file          ../target/debug/tee-sim:/sbin/tee-sim:0755
//! init-wrapper  init-wrapper.sh
//! output        ../target/qemu/initramfs.cpio.gz
//! ```

use crate::kmod::Request;
use std::path::{Path, PathBuf};

/// How the cpio archive is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// One gzip member (the kernel's `CONFIG_RD_GZIP`, on in every distribution kernel).
    Gzip,
    /// The bare cpio (always understood by the kernel).
    None,
}

/// An extra file: host source, image path, mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The file on the host.
    pub source: PathBuf,
    /// Its absolute path in the image.
    pub dest: String,
    /// Permission bits; `None`: 0755 if the source is executable by anyone, else 0644.
    pub mode: Option<u32>,
}

/// Everything `mkinitramfs` needs to build an image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// The static sealgate binary (`/sbin/sealgate`; `/init` links to it).
    pub sealgate: Option<PathBuf>,
    /// A program to be `/init` instead of the link to sealgate (test wrappers).
    pub init_wrapper: Option<PathBuf>,
    /// sealgate's config file (`/etc/sealgate/config.toml`).
    pub config: Option<PathBuf>,
    /// Init-data TOML (`/etc/sealgate/initdata.toml`).
    pub init_data: Option<PathBuf>,
    /// An unpacked kernel's `lib/modules/<release>`.
    pub modules_dir: Option<PathBuf>,
    /// The kernel release (default: the modules directory's name, else the modules'
    /// `vermagic`).
    pub kernel_version: Option<String>,
    /// Modules to include with their dependencies, and to load at boot, in order.
    pub modules: Vec<Request>,
    /// Extra files.
    pub files: Vec<FileSpec>,
    /// Extra directories and their modes.
    pub dirs: Vec<(String, u32)>,
    /// Extra symlinks `(path, target)`.
    pub symlinks: Vec<(String, String)>,
    /// Where to write the image.
    pub output: Option<PathBuf>,
    /// Compression (default gzip).
    pub compression: Option<Compression>,
    /// Modification time of every entry (default `SOURCE_DATE_EPOCH`, else 0).
    pub mtime: Option<u32>,
}

/// Parses an octal mode (`0755`, `755`, `0o755`), at most `0o7777`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid mode '{s}' (expected octal, e.g. 0755)"))
}

impl Spec {
    /// Applies one setting (`key` is a long flag without dashes). Relative paths are
    /// taken relative to `base` (the manifest's directory) when given.
    pub fn set(&mut self, key: &str, value: &str, base: Option<&Path>) -> Result<(), String> {
        let path = |v: &str| -> PathBuf {
            match base {
                Some(b) if Path::new(v).is_relative() => b.join(v),
                _ => PathBuf::from(v),
            }
        };
        match key {
            "sealgate" => self.sealgate = Some(path(value)),
            "init-wrapper" => self.init_wrapper = Some(path(value)),
            "config" => self.config = Some(path(value)),
            "init-data" => self.init_data = Some(path(value)),
            "modules-dir" => self.modules_dir = Some(path(value)),
            "kernel-version" => self.kernel_version = Some(value.to_string()),
            "module" => {
                let mut r = Request::parse(value)?;
                if r.is_path() {
                    r.module = path(&r.module).to_string_lossy().into_owned();
                }
                self.modules.push(r);
            }
            "file" => {
                let parts: Vec<&str> = value.split(':').collect();
                let (src, dest, mode) = match parts.as_slice() {
                    [s, d] => (*s, *d, None),
                    [s, d, m] => (*s, *d, Some(parse_mode(m)?)),
                    _ => return Err(format!("file '{value}': expected SRC:DST[:MODE]")),
                };
                if src.is_empty() || !dest.starts_with('/') {
                    return Err(format!(
                        "file '{value}': expected SRC:DST[:MODE] with an absolute DST"
                    ));
                }
                self.files.push(FileSpec {
                    source: path(src),
                    dest: dest.to_string(),
                    mode,
                });
            }
            "dir" => {
                let (d, mode) = match value.split_once(':') {
                    Some((d, m)) => (d, parse_mode(m)?),
                    None => (value, 0o755),
                };
                if !d.starts_with('/') {
                    return Err(format!("dir '{value}': expected an absolute path[:MODE]"));
                }
                self.dirs.push((d.to_string(), mode));
            }
            "symlink" => {
                let (link, target) = value
                    .split_once(':')
                    .filter(|(l, t)| l.starts_with('/') && !t.is_empty())
                    .ok_or_else(|| format!("symlink '{value}': expected /PATH:TARGET"))?;
                self.symlinks.push((link.to_string(), target.to_string()));
            }
            "output" => self.output = Some(path(value)),
            "compress" => {
                self.compression = Some(match value {
                    "gzip" => Compression::Gzip,
                    "none" => Compression::None,
                    other => return Err(format!("compress '{other}': expected gzip or none")),
                })
            }
            "mtime" => {
                self.mtime = Some(
                    value
                        .parse()
                        .map_err(|_| format!("mtime '{value}': expected seconds since 1970"))?,
                )
            }
            other => return Err(format!("unknown setting '{other}'")),
        }
        Ok(())
    }

    /// Reads a manifest file into this spec.
    pub fn read_manifest(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .unwrap_or((line, ""));
            self.set(key, value, Some(base))
                .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        }
        Ok(())
    }

    /// The modification time to use: the setting, else `SOURCE_DATE_EPOCH`, else 0.
    pub fn effective_mtime(&self) -> Result<u32, String> {
        if let Some(m) = self.mtime {
            return Ok(m);
        }
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("SOURCE_DATE_EPOCH '{v}' is not a number of seconds")),
            Err(_) => Ok(0),
        }
    }
}

/// The command line of `mkinitramfs`.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Build an image.
    Build(Box<Spec>),
    /// List an image's contents.
    List(PathBuf),
    /// Print usage.
    Help,
}

/// The usage text.
pub const USAGE: &str = "\
mkinitramfs: build a minimal, reproducible initramfs around the static sealgate

USAGE:
    mkinitramfs [--manifest FILE] [OPTIONS] --output IMAGE
    mkinitramfs --list IMAGE          list an image (cpio, optionally gzip)

OPTIONS (each may also be a manifest line `KEY VALUE`, KEY without the dashes):
    --sealgate PATH            the static sealgate binary -> /sbin/sealgate, /init -> sbin/sealgate
    --config PATH              sealgate's config -> /etc/sealgate/config.toml
    --init-data PATH           init-data TOML -> /etc/sealgate/initdata.toml (used by sealgate init)
    --modules-dir DIR          an unpacked kernel's lib/modules/<release>
    --kernel-version VER       the release [the modules directory's name, else the modules' vermagic]
    --module 'NAME|PATH [P=V ...]'
                               include the module and its depends= closure, and load it at boot
                               (in the order given; PATH: an out-of-tree .ko[.xz|.gz|.zst]); repeatable
    --file SRC:DST[:MODE]      an extra file (DST absolute; MODE octal [0755 if executable, else 0644])
    --dir /PATH[:MODE]         an extra directory [0755]
    --symlink /PATH:TARGET     an extra symbolic link
    --init-wrapper PATH        make PATH /init instead of the link to sealgate (test wrappers that
                               start helpers and then exec /sbin/sealgate init)
    --compress gzip|none       [gzip]
    --mtime SECS               every entry's mtime [$SOURCE_DATE_EPOCH, else 0]
    -o, --output IMAGE         where to write the image
    --manifest FILE            read settings from FILE (paths relative to its directory)
";

/// Parses the arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut spec = Spec::default();
    let mut it = args.iter();
    if args.is_empty() {
        return Ok(Command::Help);
    }
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--list" => return Ok(Command::List(PathBuf::from(value()?))),
            "--manifest" => spec.read_manifest(Path::new(&value()?))?,
            "-o" => spec.set("output", &value()?, None)?,
            n if n.starts_with("--") => spec.set(&n[2..], &value()?, None).map_err(|e| {
                if e.starts_with("unknown setting") {
                    format!("unknown option '{n}' (try --help)")
                } else {
                    e
                }
            })?,
            other => return Err(format!("unexpected argument '{other}' (try --help)")),
        }
    }
    Ok(Command::Build(Box::new(spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn manifest_then_flags() {
        let dir = std::env::temp_dir().join(format!("mkinitramfs-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("image.manifest");
        std::fs::write(
            &manifest,
            "# test image\nsealgate bin/sealgate\nconfig /etc/x.toml\nmodule virtio_net\n\
             module tsm_sim.ko provider=sev_guest\nfile helper:/sbin/helper:0700\n\
             dir /var/lib/x:0700\nsymlink /bin/sh:/sbin/helper\ncompress none\noutput out.cpio\n",
        )
        .unwrap();
        let Command::Build(spec) = parse_args(&args(&[
            "--manifest",
            manifest.to_str().unwrap(),
            "--module",
            "configfs",
            "--compress=gzip",
            "-o",
            "/tmp/x.img",
            "--mtime",
            "1700000000",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(spec.sealgate, Some(dir.join("bin/sealgate")));
        assert_eq!(spec.config, Some(PathBuf::from("/etc/x.toml")));
        assert_eq!(spec.modules.len(), 3);
        assert_eq!(
            spec.modules[1].module,
            dir.join("tsm_sim.ko").to_string_lossy()
        );
        assert_eq!(spec.modules[1].params, ["provider=sev_guest"]);
        assert_eq!(spec.modules[0].module, "virtio_net", "names are not paths");
        assert_eq!(
            spec.files,
            [FileSpec {
                source: dir.join("helper"),
                dest: "/sbin/helper".into(),
                mode: Some(0o700)
            }]
        );
        assert_eq!(spec.dirs, [("/var/lib/x".to_string(), 0o700)]);
        assert_eq!(
            spec.symlinks,
            [("/bin/sh".to_string(), "/sbin/helper".to_string())]
        );
        assert_eq!(spec.compression, Some(Compression::Gzip), "flags win");
        assert_eq!(spec.output, Some(PathBuf::from("/tmp/x.img")));
        assert_eq!(spec.effective_mtime(), Ok(1_700_000_000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn usage_errors() {
        for (a, want) in [
            (&["--bogus", "x"][..], "unknown option '--bogus'"),
            (&["--file", "a:b"], "absolute DST"),
            (&["--file", "a:/b:999"], "invalid mode"),
            (&["--compress", "xz"], "gzip or none"),
            (&["--dir", "rel"], "absolute"),
            (&["--symlink", "/a"], "/PATH:TARGET"),
            (&["--module", "a=b"], "first word"),
            (&["--output"], "needs a value"),
            (&["stray"], "unexpected argument"),
        ] {
            let e = parse_args(&args(a)).unwrap_err();
            assert!(e.contains(want), "{a:?}: {e}");
        }
        assert_eq!(parse_args(&[]).unwrap(), Command::Help);
        assert_eq!(
            parse_args(&args(&["--list", "x.img"])).unwrap(),
            Command::List("x.img".into())
        );
    }
}
