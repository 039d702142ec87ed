//! The Debian package: `cargo deb` builds it, it holds the binary, both units and the
//! /etc/cdc-agent examples as conffiles, and installing it with dpkg into a minimal Debian
//! root creates the `cdc-agent` system user that can read the configuration.
//!
//! The package is built from the test profile's binary (`--no-build --profile dev --strip`),
//! which the test harness has already built: a release build here would double the CI time.
//! Releases use plain `cargo deb` (docs/deployment.md).

use crate::common::minimal_root;

use std::path::{Path, PathBuf};
use std::process::Command;

use minimal_root::{chroot, scratch_copy, text};

fn cargo_deb() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let cached = Path::new(&home).join(".cargo/bin/cargo-deb");
    if cached.exists() {
        return cached;
    }
    PathBuf::from("cargo-deb")
}

fn build_deb(out_dir: &Path) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(cargo_deb())
        .arg("deb")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--no-build",
            "--profile",
            "dev",
            "--strip",
            "--fast",
            "--output",
        ])
        .arg(out_dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("run cargo-deb ({e}): scripts/build-deps installs it (cargo install cargo-deb)")
        });
    assert!(
        out.status.success(),
        "cargo deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("cargo deb wrote no .deb");
    println!(
        "built {} ({} bytes)",
        deb.display(),
        std::fs::metadata(&deb).unwrap().len()
    );
    deb
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-deb {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_package_builds_lists_its_files_and_installs_into_a_minimal_debian_root() {
    let out_dir = tempfile::tempdir().unwrap();
    let deb = build_deb(out_dir.path());

    let listing = Command::new("dpkg").arg("-c").arg(&deb).output().unwrap();
    assert!(listing.status.success(), "{}", text(&listing));
    let listing = String::from_utf8(listing.stdout).unwrap();
    for path in [
        "./usr/bin/cdc-agent",
        "./usr/lib/systemd/system/cdc-agent.service",
        "./usr/lib/systemd/system/cdc-agent@.service",
        "./etc/cdc-agent/cdc-agent.toml",
        "./etc/cdc-agent/cdc-agent.toml.example",
        "./etc/cdc-agent/connectors/postgres.toml.example",
        "./etc/cdc-agent/connectors/mysql.toml.example",
        "./etc/cdc-agent/apply.toml.example",
        "./usr/share/doc/cdc-agent/README.md",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing from dpkg -c:\n{listing}"
        );
    }
    let conffiles = dpkg_deb(&["--info"], &deb);
    assert!(conffiles.contains("conffiles"), "{conffiles}");
    let control = dpkg_deb(&["--field"], &deb);
    assert!(
        control.contains("Depends:") && control.contains("libssl3"),
        "{control}"
    );

    let root = scratch_copy();
    std::fs::copy(&deb, root.path().join("tmp/cdc-agent.deb")).unwrap();
    let out = chroot(root.path(), None, &["dpkg", "-i", "/tmp/cdc-agent.deb"]);
    assert!(
        out.status.success(),
        "dpkg -i in the minimal root: {}",
        text(&out)
    );
    let out = chroot(
        root.path(),
        None,
        &["dpkg-query", "-W", "-f=${Status}", "cdc-agent"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "install ok installed");

    let conf = chroot(
        root.path(),
        None,
        &["cat", "/var/lib/dpkg/info/cdc-agent.conffiles"],
    );
    let conf = String::from_utf8_lossy(&conf.stdout);
    assert!(conf.contains("/etc/cdc-agent/cdc-agent.toml\n"), "{conf}");
    assert!(
        conf.contains("/etc/cdc-agent/connectors/postgres.toml.example"),
        "{conf}"
    );

    let user = chroot(root.path(), None, &["getent", "passwd", "cdc-agent"]);
    let user = String::from_utf8_lossy(&user.stdout);
    assert!(
        user.contains("/var/lib/cdc-agent") && user.contains("nologin"),
        "{user}"
    );
    let mode = chroot(
        root.path(),
        None,
        &[
            "stat",
            "-c",
            "%U:%G %a",
            "/etc/cdc-agent/cdc-agent.toml",
            "/etc/cdc-agent",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&mode.stdout),
        "root:cdc-agent 640\nroot:cdc-agent 750\n",
        "the configuration may hold passwords: readable by the agent's group only"
    );

    // The packaged configuration loads as the user the units run as.
    let out = chroot(
        root.path(),
        Some("cdc-agent:cdc-agent"),
        &[
            "cdc-agent",
            "validate",
            "--config",
            "/etc/cdc-agent/cdc-agent.toml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(0 sources)"),
        "{}",
        text(&out)
    );

    // A second install (upgrade path) keeps working and keeps the user.
    let out = chroot(root.path(), None, &["dpkg", "-i", "/tmp/cdc-agent.deb"]);
    assert!(out.status.success(), "reinstall: {}", text(&out));
}
