//! A throw-away copy of the minimal Debian root `scripts/minimal-root` builds and caches
//! (debootstrap minbase + libssl3 + ca-certificates, the container image's runtime stage).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cached root, built on first use (scripts/test builds it before the tests run).
pub fn cached_root() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/minimal-root");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/minimal-root failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A private copy of the cached root, removed on drop; tests may install into it freely.
pub fn scratch_copy() -> tempfile::TempDir {
    let cached = cached_root();
    let dir = tempfile::Builder::new()
        .prefix("cdc-minimal-root")
        .tempdir()
        .unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", cached.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "copy {}", cached.display());
    dir
}

/// Runs `args` inside `root` with chroot(8), as `user` (`uid:gid`) when given.
pub fn chroot(root: &Path, user: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("chroot");
    if let Some(u) = user {
        cmd.arg(format!("--userspec={u}"));
    }
    cmd.arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.output()
        .unwrap_or_else(|e| panic!("chroot {args:?}: {e}"))
}

/// stdout and stderr of `out`, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
