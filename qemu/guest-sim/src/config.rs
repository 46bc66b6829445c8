//! The simulator's settings: `KEY=VALUE` lines in `/etc/guest-sim.conf` (written into the
//! image by the test harness), overridden by `sim.KEY=VALUE` words on the kernel command line.
//! `tsm_sim.PARAM=VALUE` words are the kernel module's parameters.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `firmware` | `sim` (signed by `firmware_glue::sim`) or `echo` (unsigned, module self-test) | `sim` |
//! | `seed` | seed of the simulated roots of trust (the KBS trusts the same seed) | `sealgate test roots` |
//! | `measurement` | SNP MEASUREMENT / TDX MRTD, hex (zero-padded to 48 bytes) | derived from the seed |
//! | `host_data` | SNP HOST_DATA, hex (zero-padded to 32 bytes) | zeros |
//! | `mrconfigid` | TDX MRCONFIGID, hex (zero-padded to 48 bytes) | zeros |
//! | `fail` | answer every request with this errno (fault injection) | none |
//! | `corrupt_signature` | `1`: flip a bit of every report/quote signature (fault injection) | `0` |
//! | `exec` | what the `/init` wrapper runs next, comma-separated argv | `/sbin/sealgate` (as the kernel's PID 1, sealgate takes no argument as its own) |

use std::fmt;

/// Which firmware answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareKind {
    /// Signed reports and quotes from `firmware_glue::sim`.
    Sim,
    /// Unsigned, recognisable blobs that echo the request (for testing the module itself).
    Echo,
}

/// Everything the daemon and the wrapper need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Which firmware answers.
    pub firmware: FirmwareKind,
    /// Seed of the deterministic test keys.
    pub seed: Vec<u8>,
    /// SNP MEASUREMENT / TDX MRTD (`None`: the simulator's seed-derived default).
    pub measurement: Option<[u8; 48]>,
    /// SNP HOST_DATA.
    pub host_data: [u8; 32],
    /// TDX MRCONFIGID.
    pub mrconfigid: [u8; 48],
    /// Answer every request with this errno.
    pub fail: Option<u32>,
    /// Sign, then flip a signature bit.
    pub corrupt_signature: bool,
    /// The wrapper's next stage.
    pub exec: Vec<String>,
    /// `tsm_sim` module parameters, `name=value` each.
    pub module_params: Vec<String>,
}

/// The seed `firmware_glue::sim` and the test KBS use unless told otherwise.
pub const DEFAULT_SEED: &str = "sealgate test roots";

impl Default for Config {
    fn default() -> Self {
        Config {
            firmware: FirmwareKind::Sim,
            seed: DEFAULT_SEED.as_bytes().to_vec(),
            measurement: None,
            host_data: [0; 32],
            mrconfigid: [0; 48],
            fail: None,
            corrupt_signature: false,
            exec: vec!["/sbin/sealgate".into()],
            module_params: Vec::new(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Hex (any even length up to N bytes), zero-padded to N bytes.
fn hex_padded<const N: usize>(key: &str, v: &str) -> Result<[u8; N], ConfigError> {
    let bad = || ConfigError(format!("{key}: expected up to {N} bytes of hex, got {v:?}"));
    if !v.len().is_multiple_of(2) || v.len() > 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, pair) in v.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl Config {
    /// Applies one setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "firmware" => {
                self.firmware = match value {
                    "sim" => FirmwareKind::Sim,
                    "echo" => FirmwareKind::Echo,
                    _ => return Err(ConfigError(format!("firmware: sim or echo, not {value:?}"))),
                }
            }
            "seed" => self.seed = value.as_bytes().to_vec(),
            "measurement" => self.measurement = Some(hex_padded(key, value)?),
            "host_data" => self.host_data = hex_padded(key, value)?,
            "mrconfigid" => self.mrconfigid = hex_padded(key, value)?,
            "fail" => {
                let errno = value
                    .parse::<u32>()
                    .ok()
                    .filter(|e| (1..4096).contains(e))
                    .ok_or_else(|| ConfigError(format!("fail: an errno 1..4095, not {value:?}")))?;
                self.fail = Some(errno);
            }
            "corrupt_signature" => {
                self.corrupt_signature = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(ConfigError(format!(
                            "corrupt_signature: 0 or 1, not {value:?}"
                        )));
                    }
                }
            }
            "exec" => self.exec = value.split(',').map(String::from).collect(),
            _ => return Err(ConfigError(format!("unknown setting {key:?}"))),
        }
        Ok(())
    }

    /// Applies a settings file (`KEY=VALUE` lines, `#` comments).
    pub fn apply_file(&mut self, text: &str) -> Result<(), ConfigError> {
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("not KEY=VALUE: {line:?}")))?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Applies the `sim.` and `tsm_sim.` words of a kernel command line.
    pub fn apply_cmdline(&mut self, cmdline: &str) -> Result<(), ConfigError> {
        for word in cmdline.split_ascii_whitespace() {
            if let Some(kv) = word.strip_prefix("sim.") {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                self.set(k, v)?;
            } else if let Some(param) = word.strip_prefix("tsm_sim.") {
                self.module_params.push(param.to_string());
            }
        }
        Ok(())
    }

    /// The `tsm_sim` `provider=` parameter (the module's default is `sev_guest`).
    pub fn provider(&self) -> &str {
        self.module_params
            .iter()
            .rev()
            .find_map(|p| p.strip_prefix("provider="))
            .unwrap_or("sev_guest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_cmdline() {
        let mut c = Config::default();
        c.apply_file("# test\nfirmware = echo\nhost_data=0102\nexec=/bin/x,a,b\n")
            .unwrap();
        c.apply_cmdline(
            "console=ttyS0 sim.measurement=ff tsm_sim.provider=tdx_guest sim.fail=5 quiet",
        )
        .unwrap();
        assert_eq!(c.firmware, FirmwareKind::Echo);
        assert_eq!(&c.host_data[..3], &[1, 2, 0]);
        assert_eq!(c.measurement.unwrap()[0], 0xff);
        assert_eq!(c.fail, Some(5));
        assert_eq!(c.exec, ["/bin/x", "a", "b"]);
        assert_eq!(c.module_params, ["provider=tdx_guest"]);
        assert_eq!(c.provider(), "tdx_guest");
        assert_eq!(Config::default().provider(), "sev_guest");
    }

    #[test]
    fn rejects_bad_values() {
        let mut c = Config::default();
        assert!(c.set("host_data", &"00".repeat(33)).is_err());
        assert!(c.set("host_data", "abc").is_err());
        assert!(c.set("measurement", "zz").is_err());
        assert!(c.set("fail", "0").is_err());
        assert!(c.set("firmware", "real").is_err());
        assert!(c.set("nonsense", "1").is_err());
        assert!(c.apply_file("novalue").is_err());
    }
}
