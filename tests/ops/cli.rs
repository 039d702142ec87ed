//! The built binary, run as an operator would.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
}

#[test]
fn help_lists_the_subcommands() {
    let out = agent().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("run"), "{text}");
}

#[test]
fn run_on_a_broken_config_exits_non_zero_with_one_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("cdc-agent.toml");
    std::fs::write(
        &main,
        "[kafka]\nbootstrap_servers = \"x:1\"\nlinger = 5\n[schema_registry]\nurl = \"http://r\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    let out = agent()
        .args(["run", "--config"])
        .arg(&main)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "config errors exit with 2");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains("cdc-agent.toml"), "{err}");
    assert!(lines[0].contains("kafka.linger"), "{err}");
    assert!(lines[0].contains("fix:"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn validate_accepts_the_shipped_example() {
    let out = agent()
        .args(["validate", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn source_file_runs_one_source_and_ignores_the_connectors_directory() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("cdc-agent.toml");
    std::fs::write(
        &main,
        "[kafka]\nbootstrap_servers = \"x:1\"\n[schema_registry]\nurl = \"http://r\"\n",
    )
    .unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir(&connectors).unwrap();
    for name in ["a", "b"] {
        std::fs::write(
            connectors.join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nkind = \"mysql\"\ntopic_prefix = \"{name}\"\nuser = \"u\"\n"
            ),
        )
        .unwrap();
    }
    let out = agent()
        .args(["validate", "--config"])
        .arg(&main)
        .arg("--source-file")
        .arg(connectors.join("b.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("(1 source)") && text.contains("  b (mysql)"),
        "{text}"
    );
}
