//! Command-line parsing for `sealgate` (hand-written: no argument-parser dependency).

use crate::prelude::*;
use core::fmt;
use sealgate_core::config::{
    self, ConfigError, InitMode, Ipv4Cidr, KbsCert, ModuleSpec, OnFailure, ResourceSpec, Settings,
    TeeChoice,
};

/// What to run.
#[derive(Debug)]
pub enum Command {
    /// Attest, fetch the configured resources and sealed secrets, write them under the
    /// sealed directory.
    Unseal(Options),
    /// Attest and write one resource to stdout.
    GetResource(Options, String),
    /// The init stage: prepare the early system, unseal, then exec the next init (with
    /// these arguments) or report and power off.
    Init(Options, Vec<String>),
    /// Unseal every `sealed.` environment value (and, without `--env-only`, the configured
    /// resources and sealed-secret files, as `unseal`), then exec a command with the
    /// plaintext values in its environment.
    Exec(Options, ExecSpec),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Options shared by the subcommands: a settings layer plus where the other layers are.
#[derive(Debug, Default)]
pub struct Options {
    /// Settings given as flags (the highest-precedence layer).
    pub flags: Settings,
    /// `--config FILE`.
    pub config_file: Option<String>,
    /// `--kernel-cmdline FILE` (default `/proc/cmdline`).
    pub kernel_cmdline: Option<String>,
}

/// What `sealgate exec` runs.
#[derive(Debug, Default)]
pub struct ExecSpec {
    /// `--env-only`: only the environment's sealed values; the configured resources and
    /// sealed-secret directory are ignored and nothing is written anywhere.
    pub env_only: bool,
    /// The command and its arguments (everything after `--`; at least the command).
    pub argv: Vec<String>,
}

/// A usage error (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfigError> for UsageError {
    fn from(e: ConfigError) -> Self {
        UsageError(e.to_string())
    }
}

pub const USAGE: &str = "\
sealgate: attest to a Trustee KBS and unseal secrets into a tmpfs

USAGE:
    sealgate unseal [OPTIONS]             fetch resources and sealed secrets into the sealed dir
    sealgate get-resource [OPTIONS] URI   write one resource to stdout (debugging)
    sealgate init [OPTIONS] [-- ARGS...]  init stage (PID 1): mounts, modules, network, unseal,
                                          then exec the next init with ARGS, or report
    sealgate exec [OPTIONS] [--env-only] -- CMD [ARGS...]
                                          unseal every environment value that starts with
                                          sealed. (and, without --env-only, what unseal
                                          would), then exec CMD with the plaintext values
    sealgate serve [SERVE OPTIONS] [OPTIONS]
                                          serve the CoCo guest APIs (AA and CDH ttrpc, REST);
                                          also started as attestation-agent,
                                          confidential-data-hub or api-server-rest
    sealgate --help | --version

As the kernel's PID 1 (its /init) sealgate runs the init stage and takes no argument as
its own: every argument is passed on to the next init. As a container's PID 1 (another PID
namespace) it runs the command its first argument names, else the init stage.

OPTIONS (flags override the config file, which overrides init-data, which overrides the
kernel command line):
    --kbs URL                     KBS base URL, e.g. http://10.0.2.2:8080 or
                                  https://kbs.example:8443
    --kbs-cert FILE               the KBS's certificate (PEM): trust anchor, and an exact pin
                                  of the server's certificate; requires https://
    --kbs-ca-bundle FILE          CA certificates (PEM) to trust for an https:// KBS behind a
                                  public CA; requires https:// (no system roots are used)
    --resource URI[=PATH]         fetch URI (kbs:///repo/type/tag) into PATH under the sealed
                                  dir (default PATH: repo/type/tag); repeatable
    --sealed-secrets DIR          unseal every file under DIR that holds a sealed secret
                                  (sealed.<JWS>) into the same relative path
    --sealed-secret-keys DIR      local verification keys for sealed secrets whose kid is a
                                  name [/run/confidential-containers/cdh/sealed-secret]
    --allow-unsigned-sealed-secrets
                                  INSECURE: accept sealed secrets without a valid signature
    --sealed-dir DIR              where secrets are written [/sealed]
    --owner UID:GID               owner of written files [the running user]
    --mode MODE                   mode of written files [0400]
    --tmpfs-size SIZE             size limit of the tmpfs sealgate mounts [16m]
    --no-mount                    never mount a tmpfs (use what is mounted at the sealed dir)
    --insecure-allow-non-tmpfs    INSECURE: allow a sealed dir that is not tmpfs/ramfs
    --tee auto|sample|snp|tdx     TEE to attest as [auto: detect SNP/TDX, never sample]
    --tee-key ALG                 ECDH-ES+A256KW-P256 (default), ECDH-ES+A256KW-P521,
                                  RSA-OAEP-256[-3072|-4096]
    --init-data FILE|DEV|scan     init-data (TOML file, kata block device, or scan the disks),
                                  checked against HOST_DATA/MRCONFIGID and sent with the evidence
    --configfs-tsm DIR            configfs-tsm report directory [/sys/kernel/config/tsm/report]
    --sysfs DIR                   sysfs root: TDX CCEL and RTMR files under it [/sys]
    --eventlog-dir DIR            AA event log directory (TDX) [/run/attestation-agent]
    --deadline SECS               end the whole run (DNS, connects, retries) by then [60]
    --connect-timeout-ms MS       TCP connect timeout [5000]
    --io-timeout-ms MS            per-exchange read/write timeout [30000]
    --config FILE                 TOML config file [/etc/sealgate/config.toml if present];
                                  never chosen by the kernel command line
    --kernel-cmdline FILE         kernel command line to read [/proc/cmdline]
    --log-level LEVEL             error, warn, info or debug [info]

INIT OPTIONS (sealgate init only):
    --report                      print a report of the secrets and power off, instead of
                                  exec'ing the next init
    --next-init PATH              the init exec'ed after unsealing [/sbin/init if present]
    --on-failure ACTION           poweroff (default), halt, or continue (INSECURE: start the
                                  next stage without the secrets)
    --module 'NAME [P=V ...]'     kernel module (name or .ko path) to load; repeatable
                                  [the list in /etc/sealgate/modules]
    --no-net                      leave the network alone
    --ifname NAME                 interface to configure [eth0]
    --ip ADDR/PREFIX              its IPv4 address [10.0.2.15/24 if nothing is configured]
    --gw ADDR                     default gateway [10.0.2.2 if nothing is configured]
    --dns ADDR                    name server for /etc/resolv.conf; repeatable
                                  [10.0.2.3 if nothing is configured]
    --net-wait SECS               wait this long for the interface to appear [5]

Kernel command line keys (it is not measured: only these are used unless the config file
sets trust_kernel_cmdline = true): agent.aa_kbc_params=cc_kbc::<url> and sealgate.kbs= (the
lowest-ranked KBS URL), sealgate.log=, MODULE.PARAM=VALUE, sealgate.net=on|off,
sealgate.ifname=, sealgate.ip=ADDR/PREFIX, sealgate.gw=, sealgate.dns=ADDR[,ADDR...],
sealgate.net_wait=SECS. Only with trust_kernel_cmdline = true (an image whose command line
is measured): sealgate.tee=, sealgate.key=, sealgate.resource=URI[=PATH] (repeatable),
sealgate.sealed_dir=, sealgate.owner=, sealgate.file_mode=, sealgate.tmpfs_size=,
sealgate.sealed_secrets=, sealgate.deadline=, sealgate.init_data=, sealgate.configfs_tsm=,
sealgate.mode=exec|report, sealgate.next_init=, sealgate.on_failure=,
sealgate.modules=NAME[,NAME...], sealgate.kbs_cert=FILE, sealgate.kbs_ca_bundle=FILE.
sealgate.config= is always ignored.

Encrypted volumes ([[volume]]: LUKS2 or plain dm-crypt opened with a key from the KBS,
mapped as /dev/mapper/NAME, mounted, optionally the new root) are declared only in the
config file or init-data's sealgate.toml: never by flags or the kernel command line.
";

/// The commands, as the first argument. Anything else makes PID 1 run the init stage.
pub const COMMANDS: &[&str] = &[
    "unseal",
    "get-resource",
    "init",
    "exec",
    "serve",
    "-h",
    "--help",
    "help",
    "-V",
    "--version",
    "version",
];

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut it = args.iter();
    let Some(sub) = it.next() else {
        return Ok(Command::Help);
    };
    let sub = sub.as_str();
    match sub {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "-V" | "--version" | "version" => return Ok(Command::Version),
        "unseal" | "get-resource" | "init" | "exec" => {}
        other => {
            return Err(UsageError(format!(
                "unknown command '{other}' (try --help)"
            )));
        }
    }
    let mut o = Options::default();
    let mut resources: Vec<ResourceSpec> = Vec::new();
    let mut modules: Vec<ModuleSpec> = Vec::new();
    let mut dns = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut next_args: Vec<String> = Vec::new();
    let init = sub == "init";
    let exec = sub == "exec";
    let mut env_only = false;
    let mut saw_dashes = false;
    let f = &mut o.flags;
    while let Some(arg) = it.next() {
        if (init || exec) && arg == "--" {
            next_args.extend(it.by_ref().cloned());
            saw_dashes = true;
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let value = |it: &mut core::slice::Iter<'_, String>| -> Result<String, UsageError> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "--kbs" => f.kbs_url = Some(value(&mut it)?),
            "--kbs-cert" => f.kbs_cert = Some(KbsCert::File(value(&mut it)?)),
            "--kbs-ca-bundle" => f.kbs_ca_bundle = Some(value(&mut it)?),
            "--resource" => resources.push(ResourceSpec::parse(&value(&mut it)?)?),
            "--sealed-secrets" => f.sealed_secrets_dir = Some(value(&mut it)?),
            "--sealed-secret-keys" => f.sealed_secret_keys_dir = Some(value(&mut it)?),
            "--allow-unsigned-sealed-secrets" => f.allow_unsigned = Some(true),
            "--sealed-dir" => f.sealed_dir = Some(value(&mut it)?),
            "--owner" => f.owner = Some(config::parse_owner(&value(&mut it)?)?),
            "--mode" => f.mode = Some(config::parse_mode(&value(&mut it)?)?),
            "--tmpfs-size" => f.tmpfs_size = Some(config::parse_size(&value(&mut it)?)?),
            "--no-mount" => f.mount_tmpfs = Some(false),
            "--insecure-allow-non-tmpfs" => f.allow_non_tmpfs = Some(true),
            "--tee" => f.tee = Some(TeeChoice::parse(&value(&mut it)?)?),
            "--tee-key" => f.key_algorithm = Some(config::parse_key_algorithm(&value(&mut it)?)?),
            "--init-data" => f.init_data = Some(value(&mut it)?),
            "--configfs-tsm" => f.configfs_tsm = Some(value(&mut it)?),
            "--sysfs" => f.sysfs = Some(value(&mut it)?),
            "--eventlog-dir" => f.eventlog_dir = Some(value(&mut it)?),
            "--deadline" => {
                f.deadline_secs = Some(config::parse_u64("--deadline", &value(&mut it)?)?)
            }
            "--connect-timeout-ms" => {
                f.connect_timeout_ms =
                    Some(config::parse_u64("--connect-timeout-ms", &value(&mut it)?)?)
            }
            "--io-timeout-ms" => {
                f.io_timeout_ms = Some(config::parse_u64("--io-timeout-ms", &value(&mut it)?)?)
            }
            "--log-level" => f.log_level = Some(value(&mut it)?),
            "--config" => o.config_file = Some(value(&mut it)?),
            "--kernel-cmdline" => o.kernel_cmdline = Some(value(&mut it)?),
            "--env-only" if exec => env_only = true,
            "--report" if init => f.init_mode = Some(InitMode::Report),
            "--next-init" if init => f.next_init = Some(value(&mut it)?),
            "--on-failure" if init => f.on_failure = Some(OnFailure::parse(&value(&mut it)?)?),
            "--module" if init => modules.push(ModuleSpec::parse(&value(&mut it)?)?),
            "--no-net" if init => f.net = Some(false),
            "--ifname" if init => f.ifname = Some(value(&mut it)?),
            "--ip" if init => f.ip = Some(Ipv4Cidr::parse(&value(&mut it)?)?),
            "--gw" if init => f.gateway = Some(config::parse_ipv4("--gw", &value(&mut it)?)?),
            "--dns" if init => dns.push(config::parse_ipv4("--dns", &value(&mut it)?)?),
            "--net-wait" if init => {
                f.net_wait_secs = Some(config::parse_u64("--net-wait", &value(&mut it)?)?)
            }
            s if s.starts_with('-') => {
                return Err(UsageError(format!("unknown option '{s}' (try --help)")));
            }
            _ => positional.push(arg.clone()),
        }
    }
    if !resources.is_empty() {
        o.flags.resources = Some(resources);
    }
    if !modules.is_empty() {
        o.flags.modules = Some(modules);
    }
    if !dns.is_empty() {
        o.flags.dns = Some(dns);
    }
    match sub {
        "init" => match positional.first() {
            None => Ok(Command::Init(o, next_args)),
            Some(p) => Err(UsageError(format!(
                "unexpected argument '{p}' (arguments for the next init go after --)"
            ))),
        },
        "exec" => match (positional.first(), saw_dashes && !next_args.is_empty()) {
            (Some(p), _) => Err(UsageError(format!(
                "unexpected argument '{p}' (the command goes after --)"
            ))),
            (None, false) => Err(UsageError(
                "exec needs a command after -- (sealgate exec [OPTIONS] -- CMD [ARGS...])".into(),
            )),
            (None, true) => Ok(Command::Exec(
                o,
                ExecSpec {
                    env_only,
                    argv: next_args,
                },
            )),
        },
        "unseal" => match positional.first() {
            None => Ok(Command::Unseal(o)),
            Some(p) => Err(UsageError(format!("unexpected argument '{p}'"))),
        },
        _ => match positional.as_slice() {
            [uri] => {
                // A malformed URI is a usage error (exit 2), as it is for --resource.
                sealgate_core::uri::ResourceUri::parse(uri).map_err(ConfigError::Uri)?;
                Ok(Command::GetResource(o, uri.clone()))
            }
            _ => Err(UsageError(
                "get-resource takes exactly one resource URI".into(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_flags_into_the_top_layer() {
        let Command::Unseal(o) = parse(&args(
            "unseal --kbs http://127.0.0.1:8080 --resource kbs:///a/b/c=x/c --resource=kbs:///a/b/d --tee sample --mode 0440 --insecure-allow-non-tmpfs --config /etc/x.toml",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.flags.kbs_url.as_deref(), Some("http://127.0.0.1:8080"));
        let r = o.flags.resources.unwrap();
        assert_eq!((r[0].path.as_str(), r[1].path.as_str()), ("x/c", "a/b/d"));
        assert_eq!(o.flags.tee, Some(TeeChoice::Sample));
        assert_eq!(o.flags.mode, Some(0o440));
        assert_eq!(o.flags.allow_non_tmpfs, Some(true));
        assert_eq!(o.config_file.as_deref(), Some("/etc/x.toml"));
        assert!(
            matches!(parse(&args("get-resource --kbs http://x kbs:///a/b/c")), Ok(Command::GetResource(_, u)) if u == "kbs:///a/b/c")
        );
    }

    #[test]
    fn kbs_certificate_flags_name_files() {
        let Command::Unseal(o) = parse(&args(
            "unseal --kbs https://kbs:8443 --kbs-cert /etc/kbs.pem --kbs-ca-bundle=/etc/ca.pem",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.flags.kbs_cert, Some(KbsCert::File("/etc/kbs.pem".into())));
        assert_eq!(o.flags.kbs_ca_bundle.as_deref(), Some("/etc/ca.pem"));
        let e = parse(&args("unseal --kbs-cert")).unwrap_err().to_string();
        assert!(e.contains("--kbs-cert needs a value"), "{e}");
        for flag in ["--kbs-cert FILE", "--kbs-ca-bundle FILE"] {
            assert!(USAGE.contains(flag), "{flag}");
        }
    }

    #[test]
    fn usage_errors_are_clear() {
        for (line, want) in [
            ("frobnicate", "unknown command"),
            ("unseal --bogus", "unknown option '--bogus'"),
            ("unseal --kbs", "--kbs needs a value"),
            (
                "unseal --resource kbs:///a/b",
                "exactly <repo>/<type>/<tag>",
            ),
            ("unseal --mode 0644", "invalid mode"),
            ("unseal --tee-key ECDH-ES+A256KW-P384", "P-384"),
            ("unseal extra", "unexpected argument"),
            ("get-resource", "exactly one resource URI"),
        ] {
            let e = parse(&args(line)).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(matches!(parse(&[]), Ok(Command::Help)));
        for (line, want) in [
            ("unseal --report", "unknown option '--report'"),
            ("init --on-failure reboot", "poweroff, halt or continue"),
            ("init --ip 10.0.2.15", "prefix"),
            ("init stray", "go after --"),
        ] {
            let e = parse(&args(line)).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn init_flags_and_next_init_arguments() {
        let Command::Init(o, rest) = parse(&args(
            "init --report --next-init /bin/sh --on-failure continue --module virtio_net --module=tsm_sim \
             --ifname ens3 --ip 10.0.0.2/8 --gw 10.0.0.1 --dns 10.0.0.1 --dns 10.0.0.2 --net-wait 1 \
             --kbs http://10.0.0.1:8080 -- -c --kbs x",
        ))
        .unwrap() else {
            panic!()
        };
        let f = &o.flags;
        assert_eq!(f.init_mode, Some(InitMode::Report));
        assert_eq!(f.next_init.as_deref(), Some("/bin/sh"));
        assert_eq!(f.on_failure, Some(OnFailure::Continue));
        assert_eq!(f.modules.as_ref().unwrap().len(), 2);
        assert_eq!(f.dns.as_ref().unwrap().len(), 2);
        assert_eq!(f.net_wait_secs, Some(1));
        assert_eq!(f.kbs_url.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(
            rest,
            ["-c", "--kbs", "x"],
            "after -- everything is the next init's"
        );
        let Command::Init(o, rest) = parse(&args("init --no-net")).unwrap() else {
            panic!()
        };
        assert_eq!((o.flags.net, rest.len()), (Some(false), 0));
        assert!(COMMANDS.contains(&"init") && !COMMANDS.contains(&"single"));
    }

    #[test]
    fn exec_takes_the_command_after_dashes() {
        let Command::Exec(o, spec) = parse(&args(
            "exec --kbs http://k --env-only -- /usr/bin/env -i --kbs x",
        ))
        .unwrap() else {
            panic!()
        };
        assert!(spec.env_only);
        assert_eq!(spec.argv, ["/usr/bin/env", "-i", "--kbs", "x"]);
        assert_eq!(o.flags.kbs_url.as_deref(), Some("http://k"));
        let Command::Exec(_, spec) = parse(&args("exec -- true")).unwrap() else {
            panic!()
        };
        assert!(!spec.env_only);
        for (line, want) in [
            ("exec", "needs a command after --"),
            ("exec --", "needs a command after --"),
            ("exec true", "the command goes after --"),
            ("unseal --env-only", "unknown option '--env-only'"),
            ("exec --report -- x", "unknown option '--report'"),
        ] {
            let e = parse(&args(line)).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(COMMANDS.contains(&"exec"));
    }
}
