//! What sealgate refuses: malformed URIs, output paths that leave the sealed directory,
//! symlinks inside it, resources the KBS does not have or will not give. Every refusal is
//! a clear message, a non-zero exit and no change on disk (the harness compares the
//! sealed directory, and where relevant the whole scratch tree, before and after).

mod common;

use common::*;

#[test]
fn invalid_resource_uris_are_usage_errors() {
    let w = World::new("bad-uri");
    for (uri, why) in [
        ("https:///default/a/b", "scheme must be kbs or kbs+<plugin>"),
        (
            "kbs:///default/a",
            "resource paths are exactly <repo>/<type>/<tag>",
        ),
        (
            "kbs:///default/../b",
            "must match [A-Za-z0-9_-][A-Za-z0-9_.-]*",
        ),
        ("kbs:///default/a/b c", "contains spaces"),
        ("kbs:///default/a/b#frag", "fragments are not allowed"),
        ("kbs:///default//b", "empty path segment"),
    ] {
        let msg = format!("invalid resource URI '{uri}'");
        w.unseal()
            .arg("--resource")
            .arg(uri)
            .run()
            .fails(2, &[&msg, why]);
        w.get_resource(uri).run().fails(2, &[&msg, why]);
    }
    // The same in the config file and on the kernel command line: refused while loading.
    let cfg = w
        .tmp
        .write("bad.toml", "[[resource]]\nuri = \"kbs:///default/a\"\n");
    w.bare()
        .args([
            "unseal",
            "--config",
            s(&cfg),
            "--kernel-cmdline",
            "/dev/null",
        ])
        .args(["--kbs", &w.url(), "--tee", "sample"])
        .run()
        .fails(1, &["invalid resource URI 'kbs:///default/a'"]);
    let cmdline = w
        .tmp
        .write("cmdline", "sealgate.resource=kbs:///default/a=out\n");
    let trusting = w.tmp.write("trust.toml", "trust_kernel_cmdline = true\n");
    w.bare()
        .args([
            "unseal",
            "--config",
            s(&trusting),
            "--kernel-cmdline",
            s(&cmdline),
        ])
        .args(["--kbs", &w.url(), "--tee", "sample"])
        .run()
        .fails(1, &["invalid resource URI 'kbs:///default/a'"]);
    assert_eq!(w.kbs.stats().connections, 0, "no URI reached the KBS");
}

#[test]
fn other_usage_and_configuration_errors() {
    let w = World::new("usage");
    w.bare()
        .args(["unseal", "--bogus"])
        .run()
        .fails(2, &["unknown option '--bogus'"]);
    w.bare()
        .args(["frobnicate"])
        .run()
        .fails(2, &["unknown command 'frobnicate'"]);
    w.bare()
        .args(["unseal", "--mode", "0644"])
        .run()
        .fails(2, &["invalid mode '0644'"]);
    w.bare()
        .args(["get-resource", "--kbs", &w.url()])
        .run()
        .fails(2, &["get-resource takes exactly one resource URI"]);
    // Nothing configured to unseal; no KBS URL anywhere; no TEE to attest with.
    w.unseal().run().fails(1, &["nothing to unseal"]);
    w.bare()
        .args([
            "unseal",
            "--config",
            "/dev/null",
            "--kernel-cmdline",
            "/dev/null",
        ])
        .args(["--resource", "kbs:///default/a/b"])
        .run()
        .fails(1, &["no KBS URL"]);
    w.unseal()
        .args(["--tee", "auto", "--resource", "kbs:///default/a/b"])
        .run()
        .fails(1, &["no TEE detected"]);
    w.unseal()
        .args([
            "--kbs",
            "https://127.0.0.1:1",
            "--resource",
            "kbs:///default/a/b",
        ])
        .run()
        .fails(
            1,
            // https:// works now (tls.rs), with a KBS certificate; without one it is refused.
            &["the KBS URL https://127.0.0.1:1 is https://, but no KBS certificate is configured"],
        );
    w.unseal()
        .args([
            "--kbs",
            "ftp://127.0.0.1:1",
            "--resource",
            "kbs:///default/a/b",
        ])
        .run()
        .fails(
            1,
            &["KBS URL 'ftp://127.0.0.1:1': unsupported URL scheme: only http:// and https://"],
        );
    let help = w.bare().arg("--help").run();
    help.ok();
    let usage = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--kbs",
        "--resource",
        "--sealed-dir",
        "--deadline",
        "--tee-key",
    ] {
        assert!(usage.contains(flag), "--help lists {flag}:\n{usage}");
    }
    assert_eq!(w.kbs.stats().connections, 0);
}

#[test]
fn output_paths_that_leave_the_sealed_dir_are_refused() {
    let w = World::new("traversal");
    w.secret("default/x/y", "never-written-anywhere-a1b2c3");
    w.seed_sealed_dir();
    for (path, why) in [
        ("../x", "'..'"),
        ("/abs", "must be relative"),
        ("a/../../x", "'..'"),
        ("a//b", "empty"),
    ] {
        let ran = w
            .unseal()
            .resource("kbs:///default/x/y", path)
            .watch(w.tmp.path())
            .run();
        ran.fails(1, &["output path for kbs:///default/x/y"]);
        assert!(
            ran.stderr.to_lowercase().contains(why),
            "{path}: {why}{}",
            ran.dump()
        );
    }
    assert_eq!(w.kbs.stats().connections, 0, "refused before the KBS");
    // Names reserved for sealgate's own temporaries.
    w.unseal()
        .resource("kbs:///default/x/y", "app/.sealgate-tmp-0000")
        .run()
        .fails(1, &["are reserved"]);
}

#[test]
fn symlinked_directory_inside_the_sealed_dir_is_never_followed() {
    let w = World::new("symlink-dir");
    w.secret("default/x/first", "first-value-never-written-5e5e");
    w.secret("default/x/second", "second-value-never-written-6f6f");
    w.seed_sealed_dir();
    let elsewhere = w.tmp.mkdir("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, w.sealed.join("link")).unwrap();
    std::os::unix::fs::symlink("../elsewhere", w.sealed.join("app/rel")).unwrap();
    for target in ["link/secret", "app/rel/secret", "link/deeper/secret"] {
        let ran = w
            .unseal()
            .resource("kbs:///default/x/first", "first")
            .resource("kbs:///default/x/second", target)
            .watch(&elsewhere)
            .run();
        ran.fails(1, &["refusing to follow symlink"]);
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "{target}: the symlink's target stays empty{}",
            ran.dump()
        );
        assert!(
            !w.sealed.join("first").exists(),
            "all or nothing: the first secret is not written either"
        );
    }

    // The sealed directory itself may not be a symlink.
    let link = w.tmp.join("sealed-link");
    std::os::unix::fs::symlink(&w.sealed, &link).unwrap();
    w.unseal()
        .args(["--sealed-dir", s(&link)])
        .resource("kbs:///default/x/first", "first")
        .run()
        .fails(1, &["refusing to follow symlink", "sealed-link"]);
}

#[test]
fn symlink_as_the_final_name_is_replaced_not_followed() {
    let w = World::new("symlink-final");
    w.secret("default/x/one", "replaces-the-symlink-9c0d");
    w.secret("default/x/two", "replaces-the-dangling-1e2f");
    let elsewhere = w.tmp.mkdir("elsewhere");
    let victim = w
        .tmp
        .write("elsewhere/victim", "original-content-of-victim");
    std::os::unix::fs::symlink(&victim, w.sealed.join("one")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("created"), w.sealed.join("two")).unwrap();
    let ran = w
        .unseal()
        .resource("kbs:///default/x/one", "one")
        .resource("kbs:///default/x/two", "two")
        .run();
    ran.ok();
    for (name, value) in [
        ("one", "replaces-the-symlink-9c0d"),
        ("two", "replaces-the-dangling-1e2f"),
    ] {
        let p = w.sealed.join(name);
        assert!(
            std::fs::symlink_metadata(&p).unwrap().file_type().is_file(),
            "{name} is now a regular file{}",
            ran.dump()
        );
        assert_eq!(w.read(name), value.as_bytes());
        assert_eq!(mode_of(&p), 0o400);
    }
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"original-content-of-victim"
    );
    assert!(!elsewhere.join("created").exists(), "not written through");

    // A symlink to a directory as the final name: refused, not replaced.
    std::os::unix::fs::symlink(&elsewhere, w.sealed.join("dirlink")).unwrap();
    w.unseal()
        .resource("kbs:///default/x/one", "dirlink")
        .watch(&elsewhere)
        .run()
        .fails(1, &["refusing to replace", "dirlink"]);
}

#[test]
fn missing_resource_is_tried_three_times_then_named() {
    let w = World::new("missing");
    w.secret("default/x/present", "present-but-not-written-3344");
    w.secret("default/x/also", "also-present-not-written-5566");
    w.seed_sealed_dir();
    let ran = w
        .unseal()
        .resource("kbs:///default/x/present", "app/config") // would replace seeded content
        .resource("kbs:///default/x/also", "new/also")
        .resource("kbs:///default/x/absent", "absent")
        .run();
    ran.fails(
        1,
        &[
            "kbs:///default/x/absent: refused after 3 attempts",
            "PluginInternalError",
            "nothing was written",
        ],
    )
    .never_says(&["retrying"]);
    assert_eq!(ran.count("attesting again"), 2, "{}", ran.dump());
    let stats = w.kbs.stats();
    assert_eq!(stats.resource.count(401), 3, "{stats:?}");
    assert_eq!(stats.resource.count(200), 2, "{stats:?}");
    assert_eq!((stats.auth.requests, stats.attest.requests), (3, 3));
    assert_eq!(w.read("app/config"), b"previous-app-config");
}

#[test]
fn unknown_plugin_is_a_404_without_retry() {
    let w = World::new("plugin");
    let ran = w
        .unseal()
        .resource("kbs+nosuch:///some/thing", "plugin-out")
        .run();
    ran.fails(
        1,
        &[
            "kbs+nosuch:///some/thing: not found on the KBS (HTTP 404)",
            "PluginNotFound",
        ],
    )
    .never_says(&["attesting again", "retrying"]);
    let stats = w.kbs.stats();
    // auth, attest, one GET (counted outside the resource plugin's counter).
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!((stats.auth.requests, stats.attest.requests), (1, 1));
}

#[test]
fn policy_denial_is_tried_three_times_and_nothing_is_written() {
    let w = World::with_kbs(
        "policy",
        Config {
            policy: deny_only("default/deny/me"),
            ..Config::default()
        },
    );
    w.secret("default/allow/one", "allowed-one-not-written-7788");
    w.secret("default/allow/two", "allowed-two-not-written-99aa");
    w.secret("default/deny/me", "denied-value-never-served-bbcc");
    w.seed_sealed_dir();
    let ran = w
        .unseal()
        .resource("kbs:///default/allow/one", "one")
        .resource("kbs:///default/allow/two", "two")
        .resource("kbs:///default/deny/me", "denied")
        .run();
    ran.fails(
        1,
        &[
            "kbs:///default/deny/me: refused after 3 attempts",
            "PolicyDeny",
        ],
    );
    let stats = w.kbs.stats();
    assert_eq!(stats.resource.count(401), 3, "three GETs of the denied one");
    assert_eq!(stats.resource.count(200), 2);
    assert_eq!(stats.resource.requests, 5);
}

#[test]
fn unusable_sealed_dirs_are_refused_before_the_kbs() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new("unusable");
    w.secret("default/x/y", "unusable-dir-value-d0d0");
    w.seed_sealed_dir();

    std::fs::set_permissions(&w.sealed, std::fs::Permissions::from_mode(0o777)).unwrap();
    w.unseal()
        .resource("kbs:///default/x/y", "y")
        .run()
        .fails(1, &["world-writable"]);
    std::fs::set_permissions(&w.sealed, std::fs::Permissions::from_mode(0o700)).unwrap();

    // Another agent holds the directory's lock.
    let dir = std::fs::File::open(&w.sealed).unwrap();
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    w.unseal()
        .resource("kbs:///default/x/y", "y")
        .run()
        .fails(1, &["is locked by another process"]);
    drop(dir);

    // The sealed-secrets input directory does not exist.
    w.unseal()
        .args(["--sealed-secrets", s(&w.tmp.join("no-such-input"))])
        .run()
        .fails(1, &["no-such-input", "No such file or directory"]);
    assert_eq!(w.kbs.stats().connections, 0);

    // After all that, a normal run works.
    w.unseal().resource("kbs:///default/x/y", "y").run().ok();
}

#[test]
fn a_target_that_is_a_directory_or_holds_another_target_is_refused() {
    let w = World::new("conflicts");
    w.secret("default/x/one", "conflict-one-value-1212");
    w.secret("default/x/two", "conflict-two-value-3434");
    w.seed_sealed_dir();
    w.unseal()
        .resource("kbs:///default/x/one", "a")
        .resource("kbs:///default/x/two", "a/b")
        .run()
        .fails(1, &["would have to be both a file and the directory"]);
    w.unseal()
        .resource("kbs:///default/x/one", "new")
        .resource("kbs:///default/x/two", "keep")
        .run()
        .fails(1, &["refusing to replace", "keep", "directory"]);
}
