//! Where the binaries under test are: they are built by their own cargo invocations (see
//! the package's Cargo.toml), not by this test build.

use std::path::{Path, PathBuf};

/// The binary under test.
pub fn sealgate_bin() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| built_binary("sealgate", "SEALGATE_BIN"))
}

/// The operator tool (makes sealed secrets); not every test target uses it.
#[allow(dead_code)]
pub fn sealctl_bin() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| built_binary("sealctl", "SEALCTL_BIN"))
}

/// A binary of the workspace: `$VAR` if set, else the one cargo built into the same
/// profile directory as this test (`target/<profile>/`, the parent of `deps/`). The guest
/// binary is built in its own cargo invocation (see Cargo.toml), so a missing one is an
/// error that says how to build it, never a skipped test.
fn built_binary(name: &str, var: &str) -> String {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable under target/<profile>/deps");
            profile_dir.join(name)
        }
    };
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build -p {name}`, as scripts/test does) or set ${var}",
        path.display()
    );
    path.to_str().expect("UTF-8 path").to_string()
}
