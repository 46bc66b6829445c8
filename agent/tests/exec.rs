//! `sealgate exec [--env-only] -- CMD ARGS...`: the real binary unseals the `sealed.`
//! values of its environment through the test KBS, then execs a real program (`/usr/bin/env`
//! printing its environment into the test's pipe, or `/bin/sh` touching a marker file);
//! every failure leaves the program un-exec'ed with `unseal`'s exit status.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use test_kbs::Config;

/// The KBS resource holding the public JWK that verifies the sealed values.
const KEY_URI: &str = "kbs:///default/signing-key/pub";
const DB: &str = "exec-db-password-5c1e9a";
const TOKEN: &str = "exec-api-token-77d0b3";

struct Env {
    w: World,
    key: PathBuf,
    rogue: PathBuf,
}

impl Env {
    fn new(tag: &str, config: Config) -> Env {
        let w = World::with_kbs(tag, config);
        let k = w.tmp.mkdir("operator");
        let (key, public) = keygen(&k, "kbs-signer");
        let (rogue, _) = keygen(&k, "kbs-signer-rogue");
        w.kbs
            .add_resource("default/signing-key/pub", std::fs::read(&public).unwrap())
            .unwrap();
        w.secret("default/app/db", DB);
        w.secret("default/app/token", TOKEN);
        Env { w, key, rogue }
    }

    fn sealed(&self, uri: &str) -> String {
        seal_vault(uri, &self.key, KEY_URI)
    }

    /// `sealgate exec` with the world's flags (as `unseal`) and `extra` before `--`.
    fn exec(&self, extra: &[&str], argv: &[&str]) -> Sealgate {
        let mut cmd = self
            .w
            .bare()
            .args(["exec", "--kbs", &self.w.url(), "--tee", "sample"])
            .args(["--sealed-dir", s(&self.w.sealed)])
            .args(["--no-mount", "--insecure-allow-non-tmpfs"])
            .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
            .args(["--log-level", "debug", "--deadline", "10"])
            .args(extra.iter().copied())
            .arg("--")
            .args(argv.iter().copied());
        // The program's stdout is its environment: the plaintexts, by design.
        cmd.stdout_is_secret = true;
        cmd
    }
}

fn env_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn marker_cmd(marker: &Path) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("touch {}", marker.display()),
    ]
}

#[test]
fn env_values_are_unsealed_and_the_program_sees_the_plaintexts() {
    let t = Env::new("exec-env", Config::default());
    let ran = t
        .exec(&["--env-only"], &["/usr/bin/env"])
        .env("DB_PASSWORD", t.sealed("kbs:///default/app/db"))
        .env("API_TOKEN", t.sealed("kbs:///default/app/token"))
        .env("PLAIN", "not-sealed")
        .env("ALMOST", "sealedish")
        .run();
    ran.ok().says(&["exec: unsealed 2 environment value(s)"]);
    let lines = env_lines(&ran.stdout);
    for want in [
        format!("DB_PASSWORD={DB}"),
        format!("API_TOKEN={TOKEN}"),
        "PLAIN=not-sealed".into(),
        "ALMOST=sealedish".into(),
    ] {
        assert!(lines.contains(&want), "{want} missing{}", ran.dump());
    }
    assert!(
        !lines.iter().any(|l| l.contains("=sealed.")),
        "a sealed value reached the program{}",
        ran.dump()
    );
    // --env-only: nothing written anywhere.
    assert!(
        files(&snapshot(&t.w.sealed)).is_empty(),
        "sealed dir untouched"
    );
    // One attestation for both values (and the signing key).
    let stats = t.w.kbs.stats();
    assert_eq!((stats.auth.requests, stats.attest.requests), (1, 1));
}

#[test]
fn without_env_only_the_configured_resources_are_written_too() {
    let t = Env::new("exec-both", Config::default());
    let ran = t
        .exec(
            &["--resource", "kbs:///default/app/token=token"],
            &["/usr/bin/env"],
        )
        .env("DB_PASSWORD", t.sealed("kbs:///default/app/db"))
        .run();
    ran.ok();
    assert!(env_lines(&ran.stdout).contains(&format!("DB_PASSWORD={DB}")));
    assert_eq!(t.w.read("token"), TOKEN.as_bytes());
    assert_eq!(t.w.kbs.stats().attest.requests, 1, "one session for both");
    // The same resource flag with --env-only is ignored: nothing is written.
    let t = Env::new("exec-env-only-ignores", Config::default());
    t.exec(
        &["--env-only", "--resource", "kbs:///default/app/token=token"],
        &["/usr/bin/env"],
    )
    .run()
    .ok();
    assert!(files(&snapshot(&t.w.sealed)).is_empty());
    assert_eq!(t.w.kbs.stats().connections, 0, "nothing sealed: no KBS");
}

#[test]
fn a_denied_value_execs_nothing_and_fails_like_unseal() {
    let t = Env::new(
        "exec-deny",
        Config {
            policy: deny_only("default/app/db"),
            ..Config::default()
        },
    );
    let marker = t.w.tmp.join("ran");
    let ran = t
        .exec(&["--env-only"], &[])
        .args(marker_cmd(&marker))
        .env("DB_PASSWORD", t.sealed("kbs:///default/app/db"))
        .env("API_TOKEN", t.sealed("kbs:///default/app/token"))
        .run();
    ran.fails(
        1,
        &[
            "sealed environment variable DB_PASSWORD",
            "PolicyDeny",
            "nothing was written or exec'ed",
        ],
    );
    assert!(!marker.exists(), "the program must not run");
    assert!(ran.stdout.is_empty());
    // unseal's status for the same denial.
    let input = t.w.tmp.mkdir("input");
    std::fs::write(input.join("db"), t.sealed("kbs:///default/app/db")).unwrap();
    t.w.unseal()
        .args(["--sealed-secrets", s(&input)])
        .run()
        .fails(1, &["PolicyDeny", "nothing was written"]);
}

#[test]
fn bad_sealed_values_and_missing_commands_are_refused_before_the_kbs() {
    let t = Env::new("exec-bad", Config::default());
    let marker = t.w.tmp.join("ran");
    // Not a JWS.
    t.exec(&["--env-only"], &[])
        .args(marker_cmd(&marker))
        .env("BROKEN", "sealed.not-a-jws")
        .run()
        .fails(1, &["environment variable BROKEN", "nothing was exec'ed"]);
    // Signed by a key nobody trusts: fetched key, failed signature.
    let rogue = seal_vault("kbs:///default/app/db", &t.rogue, KEY_URI);
    t.exec(&["--env-only"], &[])
        .args(marker_cmd(&marker))
        .env("ROGUE", rogue)
        .run()
        .fails(1, &["sealed environment variable ROGUE", "signature"]);
    assert!(!marker.exists(), "the program must not run");
    let before = t.w.kbs.stats().connections;
    // No such command: refused before anything is unsealed.
    t.exec(&["--env-only"], &["no-such-program-e1f2"])
        .env("DB_PASSWORD", t.sealed("kbs:///default/app/db"))
        .run()
        .fails(1, &["no-such-program-e1f2: no such executable"]);
    assert_eq!(t.w.kbs.stats().connections, before, "no KBS contact");
    // Nothing sealed with --env-only: no configuration needed at all (not even a KBS URL).
    let ran =
        t.w.bare()
            .args([
                "exec",
                "--config",
                "/dev/null",
                "--kernel-cmdline",
                "/dev/null",
            ])
            .args(["--env-only", "--", "/usr/bin/env"])
            .env("PLAIN", "x")
            .run();
    ran.ok();
    assert!(env_lines(&ran.stdout).contains(&"PLAIN=x".to_string()));
    // Usage errors: exit 2.
    t.w.bare()
        .args(["exec", "/usr/bin/env"])
        .run()
        .fails(2, &["the command goes after --"]);
}

#[test]
fn a_command_is_found_on_path_and_gets_its_arguments() {
    let t = Env::new("exec-path", Config::default());
    let dir = t.w.tmp.mkdir("bin");
    let script = dir.join("show");
    std::fs::write(&script, "#!/bin/sh\necho \"args=$*\"\necho \"v=$V\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ran = t
        .exec(&["--env-only"], &["show", "one", "two"])
        .env(
            "PATH",
            format!("/nonexistent:{}:/usr/bin:/bin", dir.display()),
        )
        .env("V", t.sealed("kbs:///default/app/token"))
        .run();
    ran.ok();
    let lines = env_lines(&ran.stdout);
    assert!(
        lines.contains(&"args=one two".to_string()),
        "{}",
        ran.dump()
    );
    assert!(lines.contains(&format!("v={TOKEN}")), "{}", ran.dump());
}
