//! The shipped systemd units pass `systemd-analyze verify` in a scratch root that holds the
//! binary at the ExecStart path, and they keep the exit codes systemd must not restart on in
//! step with the code.

use std::path::{Path, PathBuf};
use std::process::Command;

use cdc_agent::ops::exit;

const UNITS: [&str; 2] = ["cdc-agent.service", "cdc-agent@.service"];

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn systemd_analyze() -> PathBuf {
    for dir in ["/usr/bin", "/bin"] {
        let p = Path::new(dir).join("systemd-analyze");
        if p.exists() {
            return p;
        }
    }
    panic!("systemd-analyze is missing: scripts/build-deps installs it (apt package `systemd`)");
}

/// A root with the host's system units (so `sysinit.target` and friends resolve), our units
/// in /etc/systemd/system and the built binary at /usr/bin/cdc-agent.
fn scratch_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("the host has no systemd unit directory with sysinit.target");
    let dest = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&dest).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(system_units)
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success(), "copy {}", system_units.display());
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    for unit in UNITS {
        std::fs::write(etc.join(unit), unit_text(unit)).unwrap();
    }
    let bin = root.path().join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_cdc-agent"), bin.join("cdc-agent")).unwrap();
    root
}

/// Runs verify and returns (success, everything it printed). Verify exits 0 on many
/// problems it only warns about (unknown keys, unparsable values), so callers require
/// silence too.
fn verify(root: &Path, units: &[&str]) -> (bool, String) {
    let out = Command::new(systemd_analyze())
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .args(units)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn both_units_and_an_instance_of_the_template_verify_without_a_single_complaint() {
    let root = scratch_root();
    let (ok, text) = verify(
        root.path(),
        &["cdc-agent.service", "cdc-agent@demo.service"],
    );
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn verify_as_run_here_does_catch_a_broken_unit() {
    // Guards the test above: if verify stopped reporting problems in this setup, a clean
    // result would prove nothing.
    let root = scratch_root();
    let unit = root.path().join("etc/systemd/system/cdc-agent.service");
    let text = unit_text("cdc-agent.service")
        .replace("ProtectHome=yes", "ProtectHome=yes\nProtectEverything=yes");
    std::fs::write(&unit, text).unwrap();
    let (ok, out) = verify(root.path(), &["cdc-agent.service"]);
    assert!(
        !ok || out.contains("ProtectEverything"),
        "an unknown key went unnoticed: {out}"
    );

    std::fs::remove_file(root.path().join("usr/bin/cdc-agent")).unwrap();
    let (ok, out) = verify(root.path(), &["cdc-agent@demo.service"]);
    assert!(
        !ok && out.contains("/usr/bin/cdc-agent"),
        "a missing binary went unnoticed: {out}"
    );
}

#[test]
fn units_do_not_restart_an_agent_that_lost_its_source_or_was_fenced() {
    for unit in UNITS {
        let text = unit_text(unit);
        let line = text
            .lines()
            .find(|l| l.starts_with("RestartPreventExitStatus="))
            .unwrap_or_else(|| panic!("{unit} has no RestartPreventExitStatus="));
        let codes: Vec<u8> = line["RestartPreventExitStatus=".len()..]
            .split_whitespace()
            .map(|c| c.parse().unwrap())
            .collect();
        for code in [exit::CONFIG, exit::SOURCE_TAKEN, exit::FENCED] {
            assert!(
                codes.contains(&code),
                "{unit}: exit code {code} missing from {line}"
            );
        }
        assert!(
            text.contains("\nType=notify\n"),
            "{unit} is not Type=notify"
        );
        assert!(text.contains("\nRestart=on-failure\n"), "{unit}");
    }
}

#[test]
fn the_template_runs_exactly_the_instance_source_file() {
    let text = unit_text("cdc-agent@.service");
    let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(
        exec.contains("--source-file /etc/cdc-agent/connectors/%i.toml"),
        "{exec}"
    );
}
