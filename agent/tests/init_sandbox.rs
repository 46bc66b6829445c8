//! `sealgate init` for real, in a sandbox the host can offer: user, mount, network and
//! PID namespaces (`unshare`), with the test KBS inside the same network namespace.
//!
//! Each test re-runs this test binary as a *helper* inside
//! `unshare --user --map-root-user --mount --net`. The helper builds a small world there:
//!
//! * a veth pair standing in for QEMU's NIC: `eth0` (left down, unaddressed, for sealgate
//!   to configure) and its peer `kbs0` = 10.0.2.2/24, where the test KBS listens (port
//!   8080: the namespace is private, so the port is free);
//! * a tmpfs over `/etc` (so sealgate's `/etc/resolv.conf` and the default config file
//!   `/etc/sealgate/config.toml` are the sandbox's, never the host's) and a file
//!   bind-mounted over `/proc/cmdline` (the "kernel command line");
//!
//! then starts sealgate as PID 1 of a new PID namespace (`unshare --pid --fork --mount`),
//! exactly as a kernel would (no arguments), or through `sealgate init` with flags, and
//! checks the console output, the exit (a `reboot(POWER_OFF)` by PID 1 of a PID namespace
//! ends the namespace: `unshare` then dies of the same `SIGINT` its child died of), the
//! interfaces and routes with `ip -j`, and what ran next.
//!
//! A failure of the sandbox itself (no `unshare`, no user namespaces) fails the test:
//! it never skips silently.

#[path = "common/bins.rs"]
mod bins;

use bins::sealgate_bin;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const HELPER_ENV: &str = "SEALGATE_INIT_SANDBOX";
const SECRET: &[u8] = b"init-sandbox-secret-9d1c";
const KBS_URL: &str = "http://10.0.2.2:8080";
const SIGINT: i32 = 2;

// ---------------------------------------------------------------------------------------
// Outside: start the helper in fresh namespaces.

fn in_sandbox(scenario: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "--net", "--"])
        .arg(exe)
        .args([
            "--exact",
            "sandbox_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, scenario);
    let out = run(cmd);
    let text = format!(
        "--- helper stdout\n{}\n--- helper stderr\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.status.success(),
        "scenario {scenario} failed ({}):\n{text}",
        out.status
    );
    assert!(
        out.stdout.contains(&format!("scenario {scenario} passed")),
        "the helper did not run scenario {scenario}:\n{text}"
    );
}

#[test]
fn report_as_pid1_with_default_network_and_a_late_kbs() {
    in_sandbox("report");
}

#[test]
fn exec_next_init_with_arguments_and_explicit_network() {
    in_sandbox("exec");
}

#[test]
fn fails_closed_and_continue_says_so() {
    in_sandbox("failure");
}

#[test]
fn exec_by_a_wrapper_pid1_and_not_pid1() {
    in_sandbox("wrapper");
}

// ---------------------------------------------------------------------------------------
// Inside: the helper.

/// Runs the scenario named in the environment (a no-op in a normal test run).
#[test]
fn sandbox_helper() {
    let Ok(scenario) = std::env::var(HELPER_ENV) else {
        return;
    };
    let world = World::new();
    match scenario.as_str() {
        "report" => report(&world),
        "exec" => exec(&world),
        "failure" => failure(&world),
        "wrapper" => wrapper(&world),
        other => panic!("unknown scenario {other}"),
    }
    println!("scenario {scenario} passed");
}

struct World {
    dir: PathBuf,
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl World {
    fn new() -> World {
        let dir =
            std::env::temp_dir().join(format!("sealgate-init-sandbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        sh("ip link add eth0 type veth peer name kbs0 \
            && ip addr add 10.0.2.2/24 dev kbs0 && ip link set kbs0 up");
        sh("mount -t tmpfs -o mode=0755 sandbox-etc /etc && mkdir -p /etc/sealgate");
        let (flags, _) = addresses("lo");
        assert!(
            !flags.iter().any(|f| f == "UP"),
            "a new network namespace has lo down"
        );
        let cmdline = dir.join("cmdline");
        std::fs::write(&cmdline, "").unwrap();
        sh(&format!("mount --bind {} /proc/cmdline", cmdline.display()));
        World { dir }
    }

    /// Brings `lo` up, for scenarios where sealgate does not: traffic to a local address
    /// (the KBS on 10.0.2.2, and the test KBS's own wake-up connection when it stops)
    /// goes through `lo`.
    fn lo_up(&self) {
        sh("ip link set lo up");
    }

    fn sealed(&self) -> PathBuf {
        self.dir.join("sealed")
    }

    fn set_cmdline(&self, line: &str) {
        std::fs::write(self.dir.join("cmdline"), format!("{line}\n")).unwrap();
    }

    /// The config file at its default place, naming the KBS, one resource and the
    /// sealed directory, and trusting the kernel command line (these tests drive the init
    /// stage through it); `extra` is appended (e.g. an `[init]` table).
    fn set_config(&self, extra: &str) {
        std::fs::write(
            "/etc/sealgate/config.toml",
            format!(
                "trust_kernel_cmdline = true\nkbs_url = \"{KBS_URL}\"\ntee = \"sample\"\nsealed_dir = \"{}\"\ndeadline_secs = 15\n\
                 connect_timeout_ms = 500\n[[resource]]\nuri = \"kbs:///default/app/key\"\npath = \"app/key\"\n{extra}",
                self.sealed().display()
            ),
        )
        .unwrap();
    }
}

/// The test KBS on 10.0.2.2:8080, with or without the secret.
fn start_kbs(with_secret: bool) -> Kbs {
    Kbs(Some(
        test_kbs::Server::start(test_kbs::Config {
            listen: "10.0.2.2:8080".parse().unwrap(),
            resources: if with_secret {
                vec![("default/app/key".into(), SECRET.to_vec())]
            } else {
                Vec::new()
            },
            ..test_kbs::Config::default()
        })
        .expect("test KBS on 10.0.2.2:8080"),
    ))
}

/// The test KBS; stopping it needs `lo` up (it wakes its accept loop with a connection
/// to itself), so `lo` is brought up first: a failed assertion never becomes a hang.
struct Kbs(Option<test_kbs::Server>);

impl std::ops::Deref for Kbs {
    type Target = test_kbs::Server;
    fn deref(&self) -> &test_kbs::Server {
        self.0.as_ref().unwrap()
    }
}

impl Drop for Kbs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        drop(self.0.take());
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn report(&self, record: &str) -> Vec<&str> {
        let prefix = format!("SEALGATE-REPORT {record} ");
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .collect()
    }

    fn show(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with a time limit (killed after 60 s), capturing its output.
fn run(mut cmd: Command) -> Ran {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (util-linux `unshare` is needed): {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{program} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// sealgate as PID 1 of a new PID (and mount) namespace, with `args`.
fn as_pid1(args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount", "--", sealgate_bin()])
        .args(args);
    c
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ip_json(args: &str) -> serde_json::Value {
    serde_json::from_str(&sh(&format!("ip -j {args}"))).unwrap()
}

fn addresses(ifname: &str) -> (Vec<String>, Vec<String>) {
    let v = ip_json(&format!("addr show dev {ifname}"));
    let link = &v[0];
    let flags = link["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let addrs = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (flags, addrs)
}

/// The kernel's way: no arguments, `/proc/cmdline`, `/etc/sealgate/config.toml`; nothing
/// about the network configured, so QEMU's user-networking values apply; the KBS comes
/// up 1.5 s after sealgate (retried until it answers).
fn report(w: &World) {
    w.set_config("");
    w.set_cmdline("console=ttyS0 quiet sealgate.mode=report sealgate.log=debug");
    let kbs = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1500));
        start_kbs(true)
    });
    let ran = run(as_pid1(&[]));
    let server = kbs.join().unwrap();
    let show = ran.show();
    assert_eq!(
        ran.status.signal(),
        Some(SIGINT),
        "PID 1 powering off ends the PID namespace with SIGINT:\n{show}"
    );
    assert!(ran.stderr.contains("init stage (pid 1)"), "{show}");
    let begin = ran.report("begin");
    assert_eq!(
        begin,
        ["SEALGATE-REPORT begin version=1 pid=1 status=ok"],
        "{show}"
    );
    let sealed = w.sealed();
    assert_eq!(
        ran.report("secret"),
        [format!(
            "SEALGATE-REPORT secret path={}/app/key size={} mode=0400 owner=0:0 sha256={}",
            sealed.display(),
            SECRET.len(),
            sha256_hex(SECRET)
        )],
        "{show}"
    );
    let dir = ran.report("sealed-dir");
    assert_eq!(dir.len(), 1, "{show}");
    assert!(
        dir[0].starts_with(&format!(
            "SEALGATE-REPORT sealed-dir path={} tmpfs=yes magic=0x01021994 fstype=tmpfs mount_options=rw,nosuid,nodev,noexec",
            sealed.display()
        )),
        "{show}"
    );
    assert!(dir[0].contains("size=16384k"), "{show}");
    let timing = ran.report("timing");
    let fields: std::collections::BTreeMap<&str, u64> = timing[0]
        .split(' ')
        .skip(2)
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    assert_eq!(fields["boot_to_secret_us"], fields["secrets_us"]);
    assert_eq!(
        fields["sealgate_us"],
        fields["secrets_us"] - fields["start_us"]
    );
    assert!(
        fields["sealgate_us"] >= 1_400_000,
        "the KBS came up 1.5 s late: {show}"
    );
    assert_eq!(
        ran.report("end"),
        ["SEALGATE-REPORT end secrets=1 status=ok"],
        "{show}"
    );
    assert!(!ran.stdout.contains("SEALGATE-FAILED"), "{show}");
    assert!(
        !ran.stdout.contains(std::str::from_utf8(SECRET).unwrap())
            && !ran.stderr.contains(std::str::from_utf8(SECRET).unwrap()),
        "the secret itself is never printed"
    );
    // Each step is logged with its duration at debug level.
    for step in ["mounts", "modules", "configfs", "network", "unseal"] {
        assert!(
            ran.stderr.contains(&format!("init: step {step}: ")),
            "step {step}: {show}"
        );
    }
    assert!(ran.stderr.contains("/proc was mounted already"), "{show}");

    // The network sealgate configured, seen by iproute2.
    let (flags, addrs) = addresses("lo");
    assert!(flags.iter().any(|f| f == "UP"), "lo flags {flags:?}");
    assert_eq!(addrs, ["127.0.0.1/8"]);
    let (flags, addrs) = addresses("eth0");
    assert!(flags.iter().any(|f| f == "UP"), "eth0 flags {flags:?}");
    assert_eq!(addrs, ["10.0.2.15/24"]);
    let routes = ip_json("-4 route show default");
    assert_eq!(routes[0]["gateway"], "10.0.2.2", "{routes}");
    assert_eq!(routes[0]["dev"], "eth0", "{routes}");
    assert_eq!(
        std::fs::read_to_string("/etc/resolv.conf").unwrap(),
        "# written by sealgate init\nnameserver 10.0.2.3\n"
    );
    assert_eq!(server.stats().resource.count(200), 1);
}

/// `sealgate init` with flags, explicit addressing, and a next init that gets the
/// arguments after `--` and runs as PID 1 with the secret in place.
fn exec(w: &World) {
    w.lo_up();
    let _kbs = start_kbs(true);
    w.set_config("");
    let sealed = w.sealed();
    let script = format!(
        "echo \"next: pid=$$ args=$0,$1 secret=$(cat {}/app/key)\"; exit 7",
        sealed.display()
    );
    let ran = run(as_pid1(&[
        "init",
        "--next-init",
        "/bin/sh",
        "--ip",
        "10.9.0.2/24",
        "--net-wait",
        "1",
        "--log-level",
        "debug",
        "--",
        "-c",
        &script,
        "arg0",
        "arg1",
    ]));
    let show = ran.show();
    assert_eq!(ran.status.code(), Some(7), "the next init's exit: {show}");
    assert!(
        ran.stdout.contains(&format!(
            "next: pid=1 args=arg0,arg1 secret={}",
            std::str::from_utf8(SECRET).unwrap()
        )),
        "{show}"
    );
    assert!(!ran.stdout.contains("SEALGATE-"), "{show}");
    let (_, addrs) = addresses("eth0");
    assert_eq!(addrs, ["10.9.0.2/24"]);
    assert_eq!(
        ip_json("-4 route show default"),
        serde_json::json!([]),
        "no gateway configured, no default route"
    );
    assert!(
        !Path::new("/etc/resolv.conf").exists(),
        "no DNS configured, resolv.conf untouched"
    );
}

/// Without the secret on the KBS: the failure line, no next stage, power off (and halt);
/// with on_failure=continue the next stage starts and the console says so.
fn failure(w: &World) {
    w.lo_up();
    let _kbs = start_kbs(false);
    w.set_config("[init]\nnext_init = \"/bin/sh\"\n");
    let marker = w.dir.join("next-stage-ran");
    let script = format!("touch {}", marker.display());
    for (policy, cmdline) in [
        ("poweroff", "sealgate.net=off"),
        ("halt", "sealgate.net=off sealgate.on_failure=halt"),
    ] {
        w.set_cmdline(cmdline);
        let ran = run(as_pid1(&["init", "--", "-c", &script]));
        let show = ran.show();
        assert_eq!(ran.status.signal(), Some(SIGINT), "{policy}: {show}");
        let failed: Vec<&str> = ran
            .stdout
            .lines()
            .filter(|l| l.starts_with("SEALGATE-FAILED "))
            .collect();
        assert_eq!(failed.len(), 1, "{policy}: {show}");
        assert!(failed[0].contains("default/app/key"), "{policy}: {show}");
        assert!(!marker.exists(), "{policy}: the next stage must not run");
        assert!(
            ran.stderr
                .contains(if policy == "halt" { "Halt" } else { "PowerOff" })
        );
    }

    w.set_cmdline("sealgate.net=off sealgate.on_failure=continue");
    let ran = run(as_pid1(&["init", "--", "-c", &script]));
    let show = ran.show();
    assert_eq!(ran.status.code(), Some(0), "{show}");
    assert!(marker.exists(), "continue starts the next stage: {show}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(lines[0].starts_with("SEALGATE-FAILED "), "{show}");
    assert_eq!(
        lines[1], "SEALGATE-CONTINUING /bin/sh WITHOUT SECRETS (on_failure=continue)",
        "{show}"
    );
    assert!(ran.stderr.contains("INSECURE"), "{show}");

    // A broken configuration fails closed too, whatever on_failure says on the command line.
    w.set_cmdline("sealgate.net=off sealgate.on_failure=continue sealgate.ip=10.0.0.1");
    let ran = run(as_pid1(&["init", "--", "-c", &script]));
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(ran.status.signal(), Some(SIGINT), "{}", ran.show());
    assert!(
        ran.stdout
            .starts_with("SEALGATE-FAILED invalid ip '10.0.0.1'"),
        "{}",
        ran.show()
    );
    assert!(!marker.exists());
}

/// The QEMU test layout: a wrapper PID 1 mounts a fresh /proc, forks a helper process
/// and execs `sealgate init`; and `sealgate init` run as an ordinary process, which exits
/// instead of powering off.
fn wrapper(w: &World) {
    w.lo_up();
    let _kbs = start_kbs(true);
    w.set_config("");
    let cmdline = w.dir.join("cmdline");
    w.set_cmdline("sealgate.mode=report sealgate.net=off");
    // `--mount-proc` gives the namespace its own /proc before the wrapper runs; the
    // wrapper forks a long-running helper (the QEMU tests' simulator) and execs sealgate.
    let mut c = Command::new("unshare");
    c.args([
        "--pid",
        "--fork",
        "--mount",
        "--mount-proc",
        "--",
        "sh",
        "-c",
    ])
    .arg(format!(
        "sleep 30 & exec {} init --kernel-cmdline {} --log-level debug",
        sealgate_bin(),
        cmdline.display()
    ));
    let ran = run(c);
    let show = ran.show();
    assert_eq!(ran.status.signal(), Some(SIGINT), "{show}");
    assert_eq!(
        ran.report("end"),
        ["SEALGATE-REPORT end secrets=1 status=ok"],
        "{show}"
    );
    assert!(ran.stderr.contains("/proc was mounted already"), "{show}");

    // Not PID 1: the same report, then exit 0; a failure exits 1. Nothing is stopped.
    let mut c = Command::new(sealgate_bin());
    c.args(["init", "--report", "--no-net", "--sealed-dir"])
        .arg(w.dir.join("sealed2"));
    let ran = run(c);
    let show = ran.show();
    assert_eq!(ran.status.code(), Some(0), "{show}");
    assert!(
        ran.report("begin")[0].ends_with("status=ok") && !ran.report("begin")[0].contains("pid=1 "),
        "{show}"
    );
    assert_eq!(
        ran.report("end"),
        ["SEALGATE-REPORT end secrets=1 status=ok"]
    );
    let mut c = Command::new(sealgate_bin());
    c.args([
        "init",
        "--report",
        "--no-net",
        "--kbs",
        "http://10.0.2.2:1",
        "--deadline",
        "0",
    ]);
    let ran = run(c);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.show());
    assert!(ran.stdout.starts_with("SEALGATE-FAILED "), "{}", ran.show());
}
