//! The trust model (README, "Security model"; `sealgate_core::trust`), end to end: what an
//! unmeasured kernel command line may set, init-data's `sealgate.toml`, the config file's
//! location, errors that name positions instead of content, and host strings escaped
//! before they reach a log line.

mod common;
use common::*;

/// Every setting the kernel command line may not set, each with a value that would
/// change the run (or break it) if it were used.
const FORBIDDEN: &[(&str, &str)] = &[
    ("sealgate.config", "/nonexistent/config.toml"),
    ("sealgate.owner", "4242:4242"),
    ("sealgate.file_mode", "0440"),
    ("sealgate.tee", "snp"),
    ("sealgate.key", "RSA-OAEP-256"),
    ("sealgate.resource", "kbs:///default/app/evil=evil"),
    ("sealgate.sealed_dir", "/nonexistent/sealed"),
    ("sealgate.tmpfs_size", "4k"),
    ("sealgate.sealed_secrets", "/nonexistent/inputs"),
    ("sealgate.deadline", "0"),
    ("sealgate.init_data", "/nonexistent/initdata.toml"),
    ("sealgate.configfs_tsm", "/nonexistent/tsm"),
    ("sealgate.mode", "report"),
    ("sealgate.next_init", "/bin/sh"),
    ("sealgate.on_failure", "continue"),
    ("sealgate.modules", "evil"),
    // TLS trust: used, either would make the run refuse its http:// URL (and over https://
    // would let the host choose whom sealgate trusts).
    ("sealgate.kbs_cert", "/nonexistent/kbs.pem"),
    ("sealgate.kbs_ca_bundle", "/nonexistent/ca.pem"),
];

fn cmdline(w: &World, extra: &str) -> String {
    let forbidden: Vec<String> = FORBIDDEN.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let line = format!("console=ttyS0 quiet {} {extra}\n", forbidden.join(" "));
    s(&w.tmp.write("cmdline", line)).to_string()
}

/// The measured layers: flags naming the KBS, the sample TEE, the sealed dir and one
/// resource; no config file.
fn measured(w: &World, cmdline: &str) -> Sealgate {
    w.bare()
        .args(["unseal", "--kbs", &w.url(), "--tee", "sample"])
        .args(["--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--kernel-cmdline", cmdline, "--config", "/dev/null"])
        .args(["--log-level", "debug"])
}

#[test]
fn every_forbidden_key_on_the_kernel_command_line_is_ignored_with_a_warning() {
    let w = World::new("trust-cmdline");
    w.secret("default/app/key", b"the real key");
    w.secret("default/app/evil", b"the host's choice");
    let ran = measured(&w, &cmdline(&w, ""))
        .resource("kbs:///default/app/key", "app/key")
        .run();
    ran.ok();
    for (key, _) in FORBIDDEN {
        ran.says(&[&format!("ignoring {key}= on the kernel command line")]);
    }
    assert_eq!(
        files(&w.sealed_tree()),
        [("app/key".to_string(), b"the real key".to_vec())].into(),
        "{}",
        ran.dump()
    );
    let meta = std::fs::metadata(w.sealed.join("app/key")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.mode() & 0o7777, 0o400, "file_mode ignored");
    assert_eq!(
        meta.uid(),
        rustix::process::getuid().as_raw(),
        "owner ignored"
    );
}

#[test]
fn resource_mapping_and_tee_never_come_from_the_kernel_command_line() {
    let w = World::new("trust-resource");
    w.secret("default/app/evil", b"the host's choice");
    // Nothing measured names a resource: the command line's does not count.
    measured(&w, &cmdline(&w, ""))
        .run()
        .fails(1, &["nothing to unseal", "ignoring sealgate.resource="]);
    // Nothing measured names a TEE: `sealgate.tee=sample` does not make one (auto finds
    // no SNP/TDX on the test machine and fails before any network use).
    let line = s(&w.tmp.write("tee", "sealgate.tee=sample\n")).to_string();
    w.bare()
        .args(["unseal", "--kbs", &w.url(), "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--resource", "kbs:///default/app/evil=evil"])
        .args(["--kernel-cmdline", &line, "--config", "/dev/null"])
        .run()
        .fails(1, &["ignoring sealgate.tee=", "no TEE detected"]);
    assert_eq!(w.kbs.stats().requests, 0, "the KBS heard nothing");
}

#[test]
fn the_kbs_url_from_the_command_line_is_the_lowest_fallback() {
    let w = World::new("trust-kbs");
    w.secret("default/app/key", b"the key behind the fallback URL");
    let other = start_kbs(Config::default());
    // Alone, kata's agent.aa_kbc_params names the KBS.
    let alone = s(&w.tmp.write(
        "alone",
        format!("agent.aa_kbc_params=cc_kbc::{}\n", w.url()),
    ))
    .to_string();
    w.bare()
        .args(["unseal", "--tee", "sample", "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--resource", "kbs:///default/app/key=k"])
        .args(["--kernel-cmdline", &alone, "--config", "/dev/null"])
        .run()
        .ok();
    // Below a measured source (init-data here, the flags above) it is not used.
    let init_data = w.tmp.write(
        "initdata.toml",
        format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\nurl = \"{}\"\n'''\n",
            w.url()
        ),
    );
    let line = s(&w.tmp.write(
        "below",
        format!("agent.aa_kbc_params=cc_kbc::{}\n", other.url()),
    ))
    .to_string();
    let before = w.kbs.stats().requests;
    w.bare()
        .args(["unseal", "--tee", "sample", "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--resource", "kbs:///default/app/key=k"])
        .args(["--init-data", s(&init_data)])
        .args(["--kernel-cmdline", &line, "--config", "/dev/null"])
        .run()
        .ok();
    assert_eq!(
        other.stats().requests,
        0,
        "the command line's KBS is unused"
    );
    assert!(w.kbs.stats().requests > before);
}

#[test]
fn init_data_sealgate_toml_sets_resources_and_modes_but_not_the_tee() {
    let w = World::new("trust-initdata");
    w.secret("default/app/key", b"from init-data's list");
    w.secret("default/app/evil", b"the host's choice");
    let settings = format!(
        "kbs_url = \"{}\"\nmode = \"0440\"\ntee = \"snp\"\nconfigfs_tsm = \"/nonexistent\"\n\
         [[resource]]\nuri = \"kbs:///default/app/key\"\npath = \"deployment/key\"\n",
        w.url()
    );
    let settings_file = w.tmp.write("sealgate.toml", &settings);
    let init_data = w.tmp.join("initdata.toml");
    sealctl(&[
        "initdata",
        "new",
        "--sealgate-toml",
        s(&settings_file),
        s(&init_data),
    ]);
    let line = s(&w.tmp.write(
        "cmdline",
        "sealgate.resource=kbs:///default/app/evil=evil\n",
    ))
    .to_string();
    let ran = w
        .bare()
        .args(["unseal", "--tee", "sample", "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs"])
        .args(["--init-data", s(&init_data)])
        .args(["--kernel-cmdline", &line, "--config", "/dev/null"])
        .args(["--log-level", "debug"])
        .run();
    ran.ok().says(&[
        "ignoring tee from init-data's sealgate.toml",
        "ignoring configfs_tsm from init-data's sealgate.toml",
        "using the settings of init-data's sealgate.toml",
    ]);
    assert_eq!(
        files(&w.sealed_tree()),
        [(
            "deployment/key".to_string(),
            b"from init-data's list".to_vec()
        )]
        .into(),
        "{}",
        ran.dump()
    );
    assert_eq!(mode_of(&w.sealed.join("deployment/key")), 0o440);

    // The flags (measured, the image's own invocation) still outrank it.
    let ran = w
        .bare()
        .args(["unseal", "--tee", "sample", "--sealed-dir", s(&w.sealed)])
        .args(["--no-mount", "--insecure-allow-non-tmpfs", "--mode", "0400"])
        .args(["--init-data", s(&init_data)])
        .args(["--kernel-cmdline", "/dev/null", "--config", "/dev/null"])
        .run();
    ran.ok();
    assert_eq!(mode_of(&w.sealed.join("deployment/key")), 0o400);
}

const SECRET_LINE: &str = "db_password_hunter2 = \"Sup3r-S3cret-Value\"";

#[test]
fn toml_errors_name_the_file_line_and_column_never_the_line() {
    let w = World::new("trust-toml");
    // The config file: an unknown key whose line looks like a secret.
    let config = w
        .tmp
        .write("config.toml", format!("deadline_secs = 5\n{SECRET_LINE}\n"));
    let ran = w
        .bare()
        .args(["unseal", "--config", s(&config)])
        .args(["--kernel-cmdline", "/dev/null"])
        .run();
    ran.fails(1, &[&format!("{}: line 2, column 1", s(&config))]);
    ran.never_says(&["hunter2", "S3cret", "db_password"]);
    // A bare secret line that is not TOML at all.
    std::fs::write(&config, "Sup3r-S3cret-Value\n").unwrap();
    let ran = w
        .bare()
        .args(["unseal", "--config", s(&config)])
        .args(["--kernel-cmdline", "/dev/null"])
        .run();
    ran.fails(1, &[&format!("{}: line 1, column", s(&config))]);
    ran.never_says(&["S3cret"]);
    // A value of the wrong type.
    std::fs::write(&config, "deadline_secs = \"Sup3r-S3cret-Value\"\n").unwrap();
    let ran = w
        .bare()
        .args(["unseal", "--config", s(&config)])
        .args(["--kernel-cmdline", "/dev/null"])
        .run();
    ran.fails(1, &["line 1, column"]);
    ran.never_says(&["S3cret"]);

    // Init-data: the document itself, and its sealgate.toml.
    let init_data = w.tmp.write(
        "initdata.toml",
        "version = \"0.1.0\"\nalgorithm = \"sha384\"\nSup3r-S3cret-Value db_password_hunter2\n",
    );
    let ran = w
        .unseal()
        .args(["--init-data", s(&init_data)])
        .resource("kbs:///default/a/b", "x")
        .run();
    ran.fails(1, &["init-data", "line 3, column 20"]);
    ran.never_says(&["hunter2", "S3cret", "db_password"]);
    std::fs::write(
        &init_data,
        format!(
            "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"sealgate.toml\" = '''\nmode = \"0400\"\n{SECRET_LINE}\n'''\n"
        ),
    )
    .unwrap();
    let ran = w
        .unseal()
        .args(["--init-data", s(&init_data)])
        .resource("kbs:///default/a/b", "x")
        .run();
    ran.fails(1, &["init-data sealgate.toml", "line 2, column 1"]);
    ran.never_says(&["hunter2", "S3cret", "db_password"]);
    assert_eq!(w.kbs.stats().requests, 0);
}

#[test]
fn hostile_file_names_and_symlink_targets_are_escaped_in_the_log() {
    let w = World::new("trust-names");
    let inputs = w.tmp.mkdir("inputs");
    // A name that starts with ".." is skipped (debug line naming it); a symlink that
    // points outside is ignored (warning naming its target).
    let forged = "\n[ERROR] sealgate: forged line\x1b[2K\x1b]0;title\x07";
    std::fs::write(inputs.join(format!("..x{forged}")), "not sealed").unwrap();
    std::os::unix::fs::symlink(format!("../../{forged}"), inputs.join("link")).unwrap();
    let ran = w.unseal().args(["--sealed-secrets", s(&inputs)]).run();
    ran.fails(
        1,
        &[
            "nothing to unseal",
            "\\n[ERROR] sealgate: forged line\\u{1b}[2K",
        ],
    );
    assert!(!ran.stderr.contains('\x1b'), "{}", ran.dump());
    assert!(!ran.stderr.contains('\x07'), "{}", ran.dump());
    assert!(
        !ran.stderr
            .lines()
            .any(|l| l.starts_with("[ERROR] sealgate: forged")),
        "{}",
        ran.dump()
    );
}
