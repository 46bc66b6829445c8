//! `sealgate unseal` and `get-resource` end to end against the test KBS: what gets written,
//! with which bytes, modes and owners, over how many attestations and connections; where
//! the configuration comes from; which tee keys work.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;

/// 64 bytes that are not UTF-8 (0x80 cannot start a sequence) and include NUL and newlines.
fn binary_secret() -> Vec<u8> {
    (0u8..61)
        .map(|i| 0x80u8.wrapping_add(i.wrapping_mul(37)))
        .chain([0, b'\n', 0xff])
        .collect()
}

#[test]
fn several_secrets_in_one_run_one_attestation_one_connection() {
    let w = World::new("several");
    let bin = binary_secret();
    assert!(std::str::from_utf8(&bin).is_err() && bin.len() == 64);
    w.secret("default/db/password", "s3cr3t-db-password-7f1c");
    w.secret("default/api/token", "api-token-9b2e-do-not-log");
    w.secret("default/tls/key", &bin);
    w.secret("other/deep/value", "deeply-nested-value-41aa");

    let ran = w
        .unseal()
        .resource("kbs:///default/db/password", "db/password")
        .resource("kbs:///default/api/token", "api-token")
        .resource("kbs:///default/tls/key", "tls/private/key.bin")
        .arg("--resource")
        .arg("kbs:///other/deep/value") // default path: repo/type/tag
        .run();
    ran.ok();

    assert_eq!(
        files(&w.sealed_tree()),
        [
            ("api-token", b"api-token-9b2e-do-not-log".to_vec()),
            ("db/password", b"s3cr3t-db-password-7f1c".to_vec()),
            ("other/deep/value", b"deeply-nested-value-41aa".to_vec()),
            ("tls/private/key.bin", bin.clone()),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_string(), c))
        .collect(),
        "exactly the four secrets, byte for byte{}",
        ran.dump()
    );
    for f in [
        "api-token",
        "db/password",
        "other/deep/value",
        "tls/private/key.bin",
    ] {
        assert_eq!(mode_of(&w.sealed.join(f)), 0o400, "{f}{}", ran.dump());
    }
    for d in ["db", "tls", "tls/private", "other", "other/deep"] {
        let p = w.sealed.join(d);
        assert!(p.is_dir(), "{d} created");
        assert_eq!(mode_of(&p), 0o700, "created directory {d}");
    }

    let stats = w.kbs.stats();
    assert_eq!(stats.connections, 1, "one TCP connection: {stats:?}");
    assert_eq!(requests(&stats), (1, 1, 4), "one attestation: {stats:?}");
    assert_eq!(stats.resource.count(200), 4, "{stats:?}");
    assert_eq!(
        ran.summary(),
        Summary {
            secrets: 4,
            attestations: 1,
            connections: 1,
            retries: 0
        }
    );
}

#[test]
fn mode_and_owner_are_honoured_and_a_second_run_replaces_atomically() {
    let w = World::new("owner");
    w.secret("default/app/one", "first-version-of-one-3c9d");
    w.secret("default/app/two", "first-version-of-two-77ab");
    let root = running_as_root();
    // As root, hand the files to 1000:1000. Otherwise ask for root ownership, which an
    // unprivileged user can never give away: the clear error is the behaviour to check.
    let owner = if root { "1000:1000" } else { "0:0" };
    let run = |w: &World| {
        w.unseal()
            .args(["--mode", "0440", "--owner", owner])
            .resource("kbs:///default/app/one", "app/one")
            .resource("kbs:///default/app/two", "two")
            .run()
    };

    let ran = run(&w);
    if !root {
        ran.fails(1, &["chown", "Operation not permitted", "two"]);
        return;
    }
    ran.ok();
    for (f, want) in [
        ("app/one", "first-version-of-one-3c9d"),
        ("two", "first-version-of-two-77ab"),
    ] {
        let md = std::fs::symlink_metadata(w.sealed.join(f)).unwrap();
        assert_eq!(w.read(f), want.as_bytes());
        assert_eq!(mode_of(&w.sealed.join(f)), 0o440, "{f}{}", ran.dump());
        assert_eq!((md.uid(), md.gid()), (1000, 1000), "{f}{}", ran.dump());
    }
    let dir = std::fs::metadata(w.sealed.join("app")).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (1000, 1000), "created dir owner");
    ran.says(&["mode 0440, owner 1000:1000"]);

    // Second run with new content: both files replaced (new inodes: renamed over, never
    // rewritten in place), same mode and owner, nothing else appears.
    let inode = |f: &str| std::fs::metadata(w.sealed.join(f)).unwrap().ino();
    let before = (inode("app/one"), inode("two"));
    w.secret("default/app/one", "second-version-of-one-e41f");
    w.secret("default/app/two", "second-version-of-two-0b5a");
    let ran = run(&w);
    ran.ok().says(&["replaced"]);
    assert_eq!(w.read("app/one"), b"second-version-of-one-e41f");
    assert_eq!(w.read("two"), b"second-version-of-two-0b5a");
    assert_ne!((inode("app/one"), inode("two")), before, "atomic rename");
    assert_eq!(mode_of(&w.sealed.join("two")), 0o440);
    assert_eq!(
        files(&w.sealed_tree()).len(),
        2,
        "no extra files{}",
        ran.dump()
    );
}

#[test]
fn leftovers_of_a_crashed_run_are_removed() {
    let w = World::new("leftovers");
    w.secret("default/app/one", "value-after-crash-recovery-8e8e");
    w.seed_sealed_dir();
    let stale = [
        ".sealgate-tmp-0123456789abcdef",
        "app/.sealgate-bak-fedcba9876543210",
    ];
    for rel in stale {
        std::fs::write(w.sealed.join(rel), "half-written-by-a-crash").unwrap();
    }
    let ran = w
        .unseal()
        .resource("kbs:///default/app/one", "app/one")
        .run();
    ran.ok().says(&["removed leftover temporary"]);
    for rel in stale {
        assert!(!w.sealed.join(rel).exists(), "{rel} removed{}", ran.dump());
    }
    assert_eq!(w.read("app/one"), b"value-after-crash-recovery-8e8e");
    assert_eq!(
        w.read("app/config"),
        b"previous-app-config",
        "others untouched"
    );
}

#[test]
fn kbs_that_closes_every_connection_and_chunks_its_answers() {
    let w = World::with_kbs(
        "close-chunked",
        Config {
            chunked: true,
            close_after_response: true,
            ..Config::default()
        },
    );
    w.secret("default/app/one", "chunked-value-one-4f4f");
    w.secret("default/app/two", binary_secret());
    let ran = w
        .unseal()
        .resource("kbs:///default/app/one", "one")
        .resource("kbs:///default/app/two", "two")
        .run();
    ran.ok();
    assert_eq!(w.read("one"), b"chunked-value-one-4f4f");
    assert_eq!(w.read("two"), binary_secret());
    // Connection: close after each answer: one connection per request, still one
    // attestation (the session cookie outlives the connection).
    let stats = w.kbs.stats();
    assert_eq!((requests(&stats), stats.connections), ((1, 1, 2), 4));
    let sum = ran.summary();
    assert_eq!((sum.attestations, sum.connections, sum.retries), (1, 4, 0));
}

// ---------------------------------------------------------------------------------------
// Configuration sources

/// Three KBSes that each hold every resource with a value naming the KBS, so a file's
/// content tells which KBS served it and which resource was asked for.
struct ThreeKbs {
    w: World,
    b: Server,
    c: Server,
}

impl ThreeKbs {
    fn new(tag: &str) -> ThreeKbs {
        let w = World::new(tag);
        let b = start_kbs(Config::default());
        let c = start_kbs(Config::default());
        for (name, kbs) in [("A", &w.kbs), ("B", &b), ("C", &c)] {
            for res in ["cmdline", "file", "flag"] {
                w.add_secret_to(
                    kbs,
                    &format!("default/src/{res}"),
                    format!("value-of-{res}-from-kbs-{name}"),
                );
            }
        }
        ThreeKbs { w, b, c }
    }

    /// A kernel command line as kata passes it: the KBS is A.
    fn cmdline(&self, extra: &str) -> String {
        let cmdline = format!(
            "console=ttyS0 quiet agent.aa_kbc_params=cc_kbc::{} sealgate.tee=sample \
             \"sealgate.resource=kbs:///default/src/cmdline=out/cmdline\" \
             sealgate.sealed_dir={} {extra} -- sealgate.resource=kbs:///default/src/flag\n",
            self.w.url(),
            s(&self.w.sealed)
        );
        s(&self.w.tmp.write("cmdline", cmdline)).to_string()
    }

    /// A config file: the KBS is B, mode 0440; it trusts the kernel command line (as an
    /// image whose command line is measured does), so the command line's sealed dir counts.
    fn config_file(&self) -> String {
        let toml = format!(
            "trust_kernel_cmdline = true\nkbs_url = \"{}\"\nmode = \"0440\"\nmount_tmpfs = false\n\
             allow_non_tmpfs = true\n[[resource]]\nuri = \"kbs:///default/src/file\"\npath = \"out/file\"\n",
            self.b.url()
        );
        s(&self.w.tmp.write("config.toml", toml)).to_string()
    }

    /// A config file that only trusts the kernel command line.
    fn trusting(&self) -> String {
        s(&self
            .w
            .tmp
            .write("trust.toml", "trust_kernel_cmdline = true\n"))
        .to_string()
    }

    fn requests(&self) -> [u64; 3] {
        [&self.w.kbs, &self.b, &self.c].map(|k| k.stats().requests)
    }

    /// sealgate with no default flags at all (the sources under test provide them).
    fn sealgate(&self, args: &[&str]) -> Ran {
        self.w
            .bare()
            .args(args)
            .args(["--log-level", "debug"])
            .run()
    }
}

#[test]
fn kernel_command_line_alone_configures_a_run() {
    let t = ThreeKbs::new("cmdline");
    // --config keeps a host /etc/sealgate/config.toml out of the test; it trusts the
    // kernel command line, which otherwise could not name the resources (see trust.rs).
    let cmdline = t.cmdline("");
    let ran = t.sealgate(&[
        "unseal",
        "--kernel-cmdline",
        &cmdline,
        "--config",
        &t.trusting(),
        "--no-mount",
        "--insecure-allow-non-tmpfs",
    ]);
    ran.ok();
    assert!(
        ran.stderr.contains("the kernel command line is trusted"),
        "the opt-in warns: {}",
        ran.dump()
    );
    assert_eq!(
        files(&t.w.sealed_tree()),
        [(
            "out/cmdline".to_string(),
            b"value-of-cmdline-from-kbs-A".to_vec()
        )]
        .into(),
        "the resource after `--` belongs to init, not to sealgate{}",
        ran.dump()
    );
    assert_eq!(mode_of(&t.w.sealed.join("out/cmdline")), 0o400);
    assert_eq!(t.requests()[1..], [0, 0]);
}

#[test]
fn config_file_named_on_the_kernel_command_line_is_ignored() {
    // Issue 8: `sealgate.config=` used to select a file that outranked init-data. It is
    // ignored with a warning now, trusted command line or not: the file is --config's.
    let t = ThreeKbs::new("file");
    let cmdline = t.cmdline(&format!("sealgate.config={}", t.config_file()));
    let ran = t.sealgate(&[
        "unseal",
        "--kernel-cmdline",
        &cmdline,
        "--config",
        &t.trusting(),
        "--no-mount",
        "--insecure-allow-non-tmpfs",
    ]);
    ran.ok();
    assert!(
        ran.stderr
            .contains("ignoring sealgate.config= on the kernel command line"),
        "{}",
        ran.dump()
    );
    assert_eq!(
        files(&t.w.sealed_tree()),
        [(
            "out/cmdline".to_string(),
            b"value-of-cmdline-from-kbs-A".to_vec()
        )]
        .into(),
        "{}",
        ran.dump()
    );
    assert_eq!(t.requests()[1..], [0, 0], "KBS B (the file's) unused");
}

#[test]
fn config_file_given_by_the_flags_beats_the_kernel_command_line() {
    let t = ThreeKbs::new("file");
    let cmdline = t.cmdline("");
    let ran = t.sealgate(&[
        "unseal",
        "--kernel-cmdline",
        &cmdline,
        "--config",
        &t.config_file(),
    ]);
    ran.ok();
    // KBS and resource list from the file; the sealed dir (set only on the command line)
    // still from the command line: scalars merge one by one, resource lists do not.
    assert_eq!(
        files(&t.w.sealed_tree()),
        [("out/file".to_string(), b"value-of-file-from-kbs-B".to_vec())].into(),
        "{}",
        ran.dump()
    );
    assert_eq!(
        mode_of(&t.w.sealed.join("out/file")),
        0o440,
        "mode from the file"
    );
    let [a, b, c] = t.requests();
    assert_eq!((a, c), (0, 0), "KBS A (command line) and C unused");
    assert!(b >= 3, "KBS B (config file) served the run");
}

#[test]
fn flags_beat_the_config_file_and_the_kernel_command_line() {
    let t = ThreeKbs::new("flags");
    let cmdline = t.cmdline("");
    let config = t.config_file();
    let c_url = t.c.url();
    let ran = t.sealgate(&[
        "unseal",
        "--kernel-cmdline",
        &cmdline,
        "--config",
        &config,
        "--kbs",
        &c_url,
        "--resource",
        "kbs:///default/src/flag=out/flag",
        "--mode",
        "0400",
    ]);
    ran.ok();
    assert_eq!(
        files(&t.w.sealed_tree()),
        [("out/flag".to_string(), b"value-of-flag-from-kbs-C".to_vec())].into(),
        "{}",
        ran.dump()
    );
    assert_eq!(
        mode_of(&t.w.sealed.join("out/flag")),
        0o400,
        "flag beats file"
    );
    let [a, b, c] = t.requests();
    assert_eq!((a, b), (0, 0), "KBS A (command line) and B (file) unused");
    assert!(c >= 3);

    // And --config beats sealgate.config= on the command line.
    let other = t.w.tmp.write("empty.toml", "");
    let cmdline = t.cmdline(&format!("sealgate.config={}", s(&other)));
    let ran = t.sealgate(&["unseal", "--kernel-cmdline", &cmdline, "--config", &config]);
    ran.ok();
    assert_eq!(
        t.w.read("out/file"),
        b"value-of-file-from-kbs-B",
        "{}",
        ran.dump()
    );
}

// ---------------------------------------------------------------------------------------
// get-resource

#[test]
fn get_resource_writes_exactly_the_bytes_to_stdout() {
    let w = World::new("get");
    let bin = binary_secret();
    w.secret("default/blob/bin", &bin);
    w.secret("default/text/plain", "plain-text-secret-5d0c\n");

    let ran = w.get_resource("kbs:///default/blob/bin").run();
    ran.ok();
    assert_eq!(
        ran.stdout,
        bin,
        "binary resource byte for byte{}",
        ran.dump()
    );
    let ran = w.get_resource("kbs:///default/text/plain").run();
    ran.ok();
    assert_eq!(ran.stdout, b"plain-text-secret-5d0c\n", "{}", ran.dump());
    assert_eq!(w.sealed_tree().len(), 1, "get-resource never writes files");

    // Errors: stderr, exit 1, nothing on stdout.
    let ran = w.get_resource("kbs:///default/missing/thing").run();
    ran.fails(1, &["kbs:///default/missing/thing", "PluginInternalError"]);
    assert!(ran.stdout.is_empty(), "stdout empty on error{}", ran.dump());
}

// ---------------------------------------------------------------------------------------
// Tee keys

#[test]
fn every_supported_tee_key_works_end_to_end() {
    let w = World::new("teekeys");
    w.secret("default/key/value", "tee-key-protected-value-2a6e");
    // P-521 and RSA are cargo features of the binary (default on); a P-256-only build
    // checks what it contains, and that the others are refused by name.
    let algs = [
        None,
        Some("ECDH-ES+A256KW-P256"),
        #[cfg(feature = "p521")]
        Some("ECDH-ES+A256KW-P521"),
        #[cfg(feature = "rsa")]
        Some("RSA-OAEP-256"),
    ];
    for alg in algs {
        let name = alg.unwrap_or("default").replace('+', "_");
        let mut cmd = w
            .unseal()
            .resource("kbs:///default/key/value", &format!("by/{name}"));
        if let Some(alg) = alg {
            cmd = cmd.args(["--tee-key", alg]);
        }
        let ran = cmd.run();
        ran.ok();
        assert_eq!(
            w.read(&format!("by/{name}")),
            b"tee-key-protected-value-2a6e",
            "{}",
            ran.dump()
        );
    }
    assert_eq!(w.kbs.stats().resource.count(200), algs.len() as u64);
}

#[cfg(not(all(feature = "p521", feature = "rsa")))]
#[test]
fn tee_keys_left_out_of_the_build_are_refused_before_any_network_use() {
    let w = World::new("teekeys-out");
    w.secret("default/key/value", "never-fetched-value-5c1e");
    for (alg, cut) in [
        ("ECDH-ES+A256KW-P521", cfg!(not(feature = "p521"))),
        ("RSA-OAEP-256", cfg!(not(feature = "rsa"))),
    ] {
        if !cut {
            continue;
        }
        let ran = w
            .unseal()
            .resource("kbs:///default/key/value", "k")
            .args(["--tee-key", alg])
            .run();
        ran.fails(2, &["not built into this binary"]);
    }
    let stats = w.kbs.stats();
    assert_eq!(
        (stats.connections, stats.requests),
        (0, 0),
        "KBS untouched: {stats:?}"
    );
}

#[test]
fn p384_tee_key_is_refused_before_any_network_use() {
    let w = World::new("p384");
    w.secret("default/key/value", "never-fetched-value-88d1");
    let ran = w
        .unseal()
        .args(["--tee-key", "ECDH-ES+A256KW-P384"])
        .resource("kbs:///default/key/value", "x")
        .run();
    ran.fails(2, &["P-384"]);
    let stats = w.kbs.stats();
    assert_eq!(
        (stats.connections, stats.requests),
        (0, 0),
        "KBS untouched: {stats:?}"
    );
    // The same from the config file (a runtime configuration error: exit 1).
    let cfg = w
        .tmp
        .write("p384.toml", "tee_key_algorithm = \"ECDH-ES+A256KW-P384\"\n");
    let ran = w
        .bare()
        .args([
            "unseal",
            "--config",
            s(&cfg),
            "--kernel-cmdline",
            "/dev/null",
        ])
        .args(["--kbs", &w.url(), "--tee", "sample"])
        .run();
    ran.fails(1, &["P-384"]);
    assert_eq!(w.kbs.stats().connections, 0);
}
