//! Shared harness for the end-to-end tests of the real `sealgate` binary against the
//! in-process test KBS.
//!
//! Every run goes through [`Sealgate::run`], which enforces two properties for *every*
//! test without the test having to ask:
//!
//! * **Secrets never reach the logs**: no secret value registered with the [`World`]
//!   (raw, hex, base64 or base64url) may appear in sealgate's stderr, nor in its stdout
//!   except for `get-resource`, whose stdout *is* the secret; neither may any base64url
//!   JSON object (`eyJ…`: the attestation token, a JWE, a sealed secret's JWS).
//! * **No partial file**: when the run fails, the sealed directory holds exactly what it
//!   held before (paths, types, modes, owners, contents, inodes, symlink targets); after
//!   any run, no `.sealgate-*` temporary or backup is left anywhere below it.
//!
//! Runs never read the host's `/proc/cmdline` or `/etc/sealgate/config.toml`
//! (`--kernel-cmdline /dev/null --config /dev/null` unless a test builds its own
//! command line), always log at debug level (so the leak check sees the most output), and
//! are killed after [`RUN_LIMIT`].
#![allow(dead_code)]

mod bins;
pub mod guest;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use test_kbs::{
    Config, Effect, Fault, FaultKind, Policy, Rule, Server, Stats, Step, TlsSettings,
};

pub use bins::{sealctl_bin, sealgate_bin};

/// Longest any single sealgate run may take before the test kills it and fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Prefix of sealgate's temporaries and backups inside the sealed directory.
pub const TMP_MARKER: &str = ".sealgate-";

// ---------------------------------------------------------------------------------------
// Scratch directories

/// A unique scratch directory under `std::env::temp_dir()`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sealgate-e2e-{}-{}-{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }

    /// Creates `rel` (and its parents) as a directory and returns its path.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// Writes `rel` (creating parents) and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `path` as `&str` (every path the tests make is UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Whether the tests run as (possibly namespaced) root: a file we create is owned by our
/// effective uid.
pub fn running_as_root() -> bool {
    let dir = TempDir::new("whoami");
    std::fs::metadata(dir.path()).unwrap().uid() == 0
}

// ---------------------------------------------------------------------------------------
// Directory snapshots

/// One entry of a directory tree, as far as "nothing changed" is concerned.
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        ino: u64,
        content: Vec<u8>,
    },
    Symlink {
        target: PathBuf,
    },
    Other {
        mode: u32,
    },
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Dir { mode, uid, gid } => write!(f, "dir {mode:04o} {uid}:{gid}"),
            Node::File {
                mode,
                uid,
                gid,
                ino,
                content,
            } => write!(
                f,
                "file {mode:04o} {uid}:{gid} inode {ino}, {} bytes",
                content.len()
            ),
            Node::Symlink { target } => write!(f, "symlink -> {}", target.display()),
            Node::Other { mode } => write!(f, "special {mode:o}"),
        }
    }
}

/// A whole tree, keyed by path relative to its root ("" is the root itself). Symlinks
/// are recorded, never followed.
pub type Tree = BTreeMap<PathBuf, Node>;

/// Snapshots `root` (which may be missing: an empty tree).
pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    if root.symlink_metadata().is_ok() {
        walk(root, Path::new(""), &mut tree);
    }
    tree
}

fn walk(root: &Path, rel: &Path, tree: &mut Tree) {
    let path = root.join(rel);
    let md = path
        .symlink_metadata()
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let mode = md.permissions().mode() & 0o7777;
    let ft = md.file_type();
    let node = if ft.is_dir() {
        Node::Dir {
            mode,
            uid: md.uid(),
            gid: md.gid(),
        }
    } else if ft.is_file() {
        Node::File {
            mode,
            uid: md.uid(),
            gid: md.gid(),
            ino: md.ino(),
            content: std::fs::read(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        }
    } else if ft.is_symlink() {
        Node::Symlink {
            target: std::fs::read_link(&path).unwrap(),
        }
    } else {
        Node::Other {
            mode: md.permissions().mode(),
        }
    };
    tree.insert(rel.to_path_buf(), node);
    if ft.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            walk(root, &rel.join(name), tree);
        }
    }
}

/// Differences between two snapshots, one line each (empty: identical).
pub fn diff(before: &Tree, after: &Tree) -> String {
    let mut out = String::new();
    for (path, old) in before {
        match after.get(path) {
            None => writeln!(out, "  removed  {}: {old:?}", path.display()).unwrap(),
            Some(new) if new != old => {
                let what = match (old, new) {
                    (Node::File { content: a, .. }, Node::File { content: b, .. }) if a != b => {
                        " (content changed)"
                    }
                    _ => "",
                };
                writeln!(
                    out,
                    "  changed  {}: {old:?} => {new:?}{what}",
                    path.display()
                )
                .unwrap()
            }
            Some(_) => {}
        }
    }
    for (path, new) in after {
        if !before.contains_key(path) {
            writeln!(out, "  added    {}: {new:?}", path.display()).unwrap();
        }
    }
    out
}

/// Paths below `root` whose name marks a sealgate temporary or backup.
pub fn leftovers(root: &Path) -> Vec<PathBuf> {
    snapshot(root)
        .into_keys()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TMP_MARKER))
        })
        .collect()
}

/// The regular files of a tree with their contents (for "exactly these files").
pub fn files(tree: &Tree) -> BTreeMap<String, Vec<u8>> {
    tree.iter()
        .filter_map(|(p, n)| match n {
            Node::File { content, .. } => Some((p.to_str().unwrap().to_string(), content.clone())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// HTTP or HTTPS

/// How the KBS is spoken to. Tests of behaviour that does not depend on it (the fault
/// matrix, the deadline) run over both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    /// HTTPS with a certificate for `127.0.0.1` and `localhost` from a test CA, which
    /// sealgate gets as `--kbs-cert`.
    Https,
}

/// Both schemes, for tests that run over each.
pub const SCHEMES: [Scheme; 2] = [Scheme::Http, Scheme::Https];

/// The test CA and the server certificate of [`Scheme::Https`] (made once per process).
pub struct TestPki {
    pub ca: test_kbs::certs::TestCa,
    pub server: test_kbs::certs::Issued,
}

pub fn test_pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let ca = test_kbs::certs::TestCa::new("sealgate tests CA");
        let server = ca.issue(&["127.0.0.1", "localhost"]);
        TestPki { ca, server }
    })
}

/// A TLS server configuration from `issued` (`tls12_only`: TLS 1.2 alone).
pub fn tls_settings(issued: &test_kbs::certs::Issued, tls12_only: bool) -> TlsSettings {
    TlsSettings::from_pem(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        tls12_only,
    )
    .unwrap()
}

impl Scheme {
    /// `http` or `https`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// `config` served over this scheme (HTTPS: with its own TLS settings if it has them,
    /// else the test CA's server certificate).
    pub fn serve(self, config: Config) -> Config {
        match self {
            Scheme::Http => config,
            Scheme::Https if config.tls.is_some() => config,
            Scheme::Https => Config {
                tls: Some(tls_settings(&test_pki().server, false)),
                ..config
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// The world of one test: scratch space, a sealed directory, a KBS, the secrets

/// Everything one test needs.
pub struct World {
    /// Scratch space (removed at the end).
    pub tmp: TempDir,
    /// The sealed directory (created empty, on the normal filesystem).
    pub sealed: PathBuf,
    /// The test KBS (stopped on drop).
    pub kbs: Server,
    /// The KBS certificate file passed as `--kbs-cert` (HTTPS).
    pub kbs_cert: Option<PathBuf>,
    secrets: Mutex<Vec<Vec<u8>>>,
}

impl World {
    /// A KBS with the default configuration (allow everything to an affirming sample TEE).
    pub fn new(tag: &str) -> World {
        World::with_kbs(tag, Config::default())
    }

    pub fn with_kbs(tag: &str, config: Config) -> World {
        World::over(tag, config, Scheme::Http)
    }

    /// A KBS with `config`, spoken to over `scheme` (HTTPS: with the test CA's certificate
    /// as `--kbs-cert`).
    pub fn over(tag: &str, config: Config, scheme: Scheme) -> World {
        let tmp = TempDir::new(tag);
        let sealed = tmp.mkdir("sealed");
        std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let kbs_cert = match (&config.tls, scheme) {
            (Some(_), _) | (None, Scheme::Https) => {
                Some(tmp.write("kbs-ca.pem", &test_pki().ca.cert_pem))
            }
            (None, Scheme::Http) => None,
        };
        World {
            kbs: start_kbs(scheme.serve(config)),
            tmp,
            sealed,
            kbs_cert,
            secrets: Mutex::new(Vec::new()),
        }
    }

    /// `--kbs-cert FILE` when the KBS is HTTPS, else nothing.
    pub fn cert_args(&self) -> Vec<String> {
        match &self.kbs_cert {
            Some(p) => vec!["--kbs-cert".into(), s(p).into()],
            None => Vec::new(),
        }
    }

    /// Adds resource `path` (`repo/type/tag`) to the KBS and remembers its value as a
    /// secret that must never be logged.
    pub fn secret(&self, path: &str, value: impl AsRef<[u8]>) {
        self.add_secret_to(&self.kbs, path, value);
    }

    /// Like [`World::secret`], on another KBS of the same test.
    pub fn add_secret_to(&self, kbs: &Server, path: &str, value: impl AsRef<[u8]>) {
        let value = value.as_ref().to_vec();
        kbs.add_resource(path, value.clone())
            .unwrap_or_else(|e| panic!("add resource {path}: {e}"));
        self.remember(value);
    }

    /// Registers a value that must never appear in sealgate's output.
    pub fn remember(&self, value: impl AsRef<[u8]>) {
        self.secrets.lock().unwrap().push(value.as_ref().to_vec());
    }

    /// The KBS URL.
    pub fn url(&self) -> String {
        self.kbs.url()
    }

    /// `sealgate unseal` against this world's KBS and sealed dir, on the normal filesystem:
    /// `--kbs URL --tee sample --sealed-dir DIR --no-mount --insecure-allow-non-tmpfs
    /// --kernel-cmdline /dev/null --config /dev/null --log-level debug --deadline 10`.
    pub fn unseal(&self) -> Sealgate {
        self.bare()
            .args(["unseal", "--kbs", &self.url(), "--tee", "sample"])
            .args(self.cert_args())
            .args(["--sealed-dir", s(&self.sealed)])
            .args(["--no-mount", "--insecure-allow-non-tmpfs"])
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .args(["--log-level", "debug", "--deadline", "10"])
    }

    /// `sealgate get-resource URI` against this world's KBS; its stdout may hold the secret.
    pub fn get_resource(&self, uri: &str) -> Sealgate {
        let mut cmd = self
            .bare()
            .args(["get-resource", "--kbs", &self.url(), "--tee", "sample"])
            .args(self.cert_args())
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .args(["--log-level", "debug", "--deadline", "10", uri]);
        cmd.stdout_is_secret = true;
        cmd
    }

    /// sealgate with no argument yet, but with this world's secrets and sealed directory
    /// watched.
    pub fn bare(&self) -> Sealgate {
        Sealgate {
            program: sealgate_bin().into(),
            args: Vec::new(),
            secrets: self.secrets.lock().unwrap().clone(),
            watch: vec![self.sealed.clone()],
            stdout_is_secret: false,
            envs: Vec::new(),
        }
    }

    /// Snapshot of the sealed directory.
    pub fn sealed_tree(&self) -> Tree {
        snapshot(&self.sealed)
    }

    /// Reads a file below the sealed directory.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.sealed.join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Puts earlier content into the sealed directory, as a previous run would have left
    /// it, so that "unchanged after a failure" compares something: `app/config`,
    /// `old/token` (both 0400, "previous …") and an empty dir `keep/`.
    pub fn seed_sealed_dir(&self) {
        for (rel, content) in [
            ("app/config", "previous-app-config"),
            ("old/token", "previous-old-token"),
        ] {
            let p = self.sealed.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        std::fs::create_dir_all(self.sealed.join("keep")).unwrap();
    }
}

/// Starts a test KBS on 127.0.0.1.
pub fn start_kbs(config: Config) -> Server {
    Server::start(config).unwrap_or_else(|e| panic!("cannot start the test KBS: {e}"))
}

/// A policy that denies `resource` (`repo/type/tag`) and allows everything else.
pub fn deny_only(resource: &str) -> Policy {
    Policy {
        default: Effect::Allow,
        rules: vec![Rule {
            effect: Effect::Deny,
            resource: Some(resource.into()),
            tee: None,
            status: None,
        }],
    }
}

// ---------------------------------------------------------------------------------------
// Running sealgate

/// A sealgate command line being built.
#[must_use]
pub struct Sealgate {
    program: OsString,
    args: Vec<OsString>,
    secrets: Vec<Vec<u8>>,
    /// Directories that must be unchanged after a failure and free of temporaries.
    watch: Vec<PathBuf>,
    /// get-resource: stdout carries the secret by design.
    pub stdout_is_secret: bool,
    /// Extra environment variables (`exec`).
    envs: Vec<(OsString, OsString)>,
}

impl Sealgate {
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the process.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// `--resource URI=PATH`.
    pub fn resource(self, uri: &str, path: &str) -> Self {
        self.arg("--resource").arg(format!("{uri}={path}"))
    }

    /// Also require `dir` to be unchanged on failure and free of temporaries.
    pub fn watch(mut self, dir: &Path) -> Self {
        self.watch.push(dir.to_path_buf());
        self
    }

    /// Runs another program (a wrapper such as `unshare … sh -c`) with the same checks.
    pub fn wrapped_in(mut self, program: &str, pre_args: &[&str]) -> Self {
        let mut args: Vec<OsString> = pre_args.iter().map(OsString::from).collect();
        args.push(std::mem::replace(&mut self.program, program.into()));
        args.append(&mut self.args);
        self.args = args;
        self
    }

    fn command_line(&self) -> String {
        let mut line = Path::new(&self.program)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for a in &self.args {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        line
    }

    /// Starts the process (for tests that act while it runs); finish with [`Running::wait`].
    pub fn spawn(self) -> Running {
        let before = self.watch.iter().map(|d| snapshot(d)).collect();
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_remove("SEALGATE_LOG")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.command_line()));
        Running {
            cmd: self,
            child,
            before,
            started: Instant::now(),
        }
    }

    /// Runs to completion and applies the checks described in the module documentation.
    pub fn run(self) -> Ran {
        self.spawn().wait()
    }
}

/// A running sealgate.
pub struct Running {
    cmd: Sealgate,
    child: Child,
    before: Vec<Tree>,
    started: Instant,
}

impl Running {
    /// The process id (the program's; a wrapper that execs keeps it).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(mut self) -> Ran {
        let mut out = self.child.stdout.take().unwrap();
        let mut err = self.child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let err_reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not finish within {RUN_LIMIT:?}; stderr so far:\n{}",
                    self.cmd.command_line(),
                    String::from_utf8_lossy(&err_reader.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let ran = Ran {
            command: self.cmd.command_line(),
            code: status.code(),
            stdout: out_reader.join().unwrap(),
            stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
            elapsed: self.started.elapsed(),
        };
        ran.check_no_secret_in_logs(&self.cmd.secrets, self.cmd.stdout_is_secret);
        for (dir, before) in self.cmd.watch.iter().zip(&self.before) {
            let left = leftovers(dir);
            assert!(
                left.is_empty(),
                "temporaries left below {} after `{}`: {left:?}\n{}",
                dir.display(),
                ran.command,
                ran.dump()
            );
            if ran.code != Some(0) {
                let d = diff(before, &snapshot(dir));
                assert!(
                    d.is_empty(),
                    "`{}` failed but changed {}:\n{d}{}",
                    ran.command,
                    dir.display(),
                    ran.dump()
                );
            }
        }
        ran
    }
}

/// A finished run.
pub struct Ran {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Counters from sealgate's final log line.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub secrets: u32,
    pub attestations: u32,
    pub connections: u32,
    pub retries: u32,
}

impl Ran {
    /// Exit status, stdout and stderr, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "\n--- command: {}\n--- exit: {:?} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}---",
            self.command,
            self.code,
            self.elapsed,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success{}", self.dump());
        self
    }

    /// Exit status `code` and every `needle` in stderr.
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}{}", self.dump());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}{}",
                self.dump()
            );
        }
        self
    }

    /// Asserts stderr contains every `needle`.
    #[track_caller]
    pub fn says(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}{}",
                self.dump()
            );
        }
        self
    }

    /// Asserts stderr contains none of `needles`.
    #[track_caller]
    pub fn never_says(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                !self.stderr.contains(needle),
                "stderr should not contain {needle:?}{}",
                self.dump()
            );
        }
        self
    }

    /// How many stderr lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr.lines().filter(|l| l.contains(needle)).count()
    }

    /// Parses "unsealed N secret(s) into DIR (A attestation(s), C connection(s), R retries)".
    #[track_caller]
    pub fn summary(&self) -> Summary {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains("sealgate: info: unsealed "))
            .unwrap_or_else(|| panic!("no summary line{}", self.dump()));
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |label: &str| -> u32 {
            let i = words
                .iter()
                .position(|w| {
                    w.strip_prefix(label)
                        .is_some_and(|rest| ["", ",", ")"].contains(&rest))
                })
                .unwrap_or_else(|| panic!("no {label} in summary {line:?}"));
            words[i - 1]
                .trim_start_matches('(')
                .parse()
                .unwrap_or_else(|_| panic!("bad summary {line:?}"))
        };
        Summary {
            secrets: num("secret(s)"),
            attestations: num("attestation(s)"),
            connections: num("connection(s)"),
            retries: num("retries"),
        }
    }

    fn check_no_secret_in_logs(&self, secrets: &[Vec<u8>], stdout_is_secret: bool) {
        let mut streams: Vec<(&str, &[u8])> = vec![("stderr", self.stderr.as_bytes())];
        if !stdout_is_secret {
            streams.push(("stdout", &self.stdout));
        }
        // Nor any base64url JOSE object ('{"' encodes as "eyJ"): the attestation token, a
        // JWE, a JWS. Tokens are credentials, JWEs and sealed secrets have no place in logs.
        for (name, stream) in &streams {
            assert!(
                !contains(stream, b"eyJ"),
                "a base64url JSON object (token, JWE or JWS) appears in sealgate's {name}{}",
                self.dump()
            );
        }
        for secret in secrets {
            for (form, needle) in encodings(secret) {
                for (name, stream) in &streams {
                    assert!(
                        !contains(stream, &needle),
                        "a secret ({form}) appears in sealgate's {name}{}",
                        self.dump()
                    );
                }
            }
        }
    }
}

/// The forms in which a secret must never appear: raw, and (for values long enough not to
/// match by accident) hex, base64 and base64url.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut forms = vec![("raw", secret.to_vec())];
    if secret.len() >= 12 {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        forms.push(("hex", hex.into_bytes()));
        // Drop the last (padding-dependent) characters: a prefix match is what matters.
        let std = sealgate_core::b64::std_encode(secret);
        let url = sealgate_core::b64::url_encode(secret);
        forms.push(("base64", std.as_bytes()[..std.len() - 4].to_vec()));
        forms.push(("base64url", url.as_bytes()[..url.len() - 4].to_vec()));
    }
    forms
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// sealctl

/// Runs sealctl, which must succeed; returns its stdout.
#[track_caller]
pub fn sealctl(args: &[&str]) -> String {
    let out = Command::new(sealctl_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sealctl {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An ES256 key pair made by `sealctl keygen --kid KID` in `dir`: (private, public) paths.
pub fn keygen(dir: &Path, kid: &str) -> (PathBuf, PathBuf) {
    sealctl(&["keygen", "--kid", kid, "--output-dir", s(dir)]);
    (
        dir.join(format!("{kid}-private.json")),
        dir.join(format!("{kid}-public.json")),
    )
}

/// `sealctl seal vault`: the sealed string (without the trailing newline).
pub fn seal_vault(resource_uri: &str, signing_key: &Path, kid: &str) -> String {
    sealctl(&[
        "seal",
        "vault",
        "--resource-uri",
        resource_uri,
        "--signing-key",
        s(signing_key),
        "--kid",
        kid,
    ])
    .trim_end()
    .to_string()
}

// ---------------------------------------------------------------------------------------
// Small assertions

/// Permission bits of `path` (not following a final symlink).
pub fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// KBS step counters as (auth, attest, resource) requests.
pub fn requests(stats: &Stats) -> (u64, u64, u64) {
    (
        stats.auth.requests,
        stats.attest.requests,
        stats.resource.requests,
    )
}
