//! The binary runs on a minimal Debian root — the container image's runtime stage — with only
//! its configuration mounted: no Rust toolchain, no build libraries, a non-root user. There is
//! no container engine in CI, so this is how the Dockerfile's runtime is proven: the same base
//! (debootstrap minbase ≈ debian:bookworm-slim) plus the same packages, run with chroot(8).

use crate::common::minimal_root;

use std::path::Path;

use minimal_root::{chroot, scratch_copy, text};

/// The container's user (Dockerfile: `USER 65532:65532`).
const CONTAINER_USER: &str = "65532:65532";

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Copies the binary and a configuration (main file + connector files) into `root`.
fn mount(root: &Path, main: &str, connectors: &[(&str, &str)]) {
    let bin = root.join("usr/bin/cdc-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_cdc-agent"), &bin).unwrap();
    let etc = root.join("etc/cdc-agent");
    std::fs::create_dir_all(etc.join("connectors")).unwrap();
    std::fs::write(etc.join("cdc-agent.toml"), main).unwrap();
    for (name, body) in connectors {
        std::fs::write(etc.join("connectors").join(name), body).unwrap();
    }
}

/// The text of a `key: |` block scalar of a YAML file (indented lines after the key).
fn yaml_block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let indent = header.len() - header.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_binary_needs_only_libc_libssl_and_zlib_which_the_minimal_root_has() {
    let root = scratch_copy();
    mount(root.path(), &repo("deploy/container/cdc-agent.toml"), &[]);
    let out = chroot(root.path(), None, &["ldd", "/usr/bin/cdc-agent"]);
    let libs = text(&out);
    assert!(out.status.success(), "{libs}");
    assert!(
        !libs.contains("not found"),
        "a shared library is missing: {libs}"
    );
    // The list docs/deployment.md documents; a new one must be added there and to the image.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.contains(".so"))
        .map(|n| n.rsplit('/').next().unwrap())
        .collect();
    println!("shared libraries: {names:?}");
    for name in &names {
        assert!(
            [
                "linux-vdso.so.1",
                "libz.so.1",
                "libssl.so.3",
                "libcrypto.so.3",
                "libgcc_s.so.1",
                "libm.so.6",
                "libc.so.6",
                "ld-linux-x86-64.so.2",
            ]
            .contains(name),
            "undocumented shared library {name}: add it to docs/deployment.md and the image"
        );
    }
}

#[test]
fn the_container_config_validates_as_the_container_user_with_only_the_config_mounted() {
    let root = scratch_copy();
    mount(
        root.path(),
        &repo("deploy/container/cdc-agent.toml"),
        &[(
            "app-db.toml",
            &repo("deploy/container/connectors/app-db.toml"),
        )],
    );
    let out = chroot(
        root.path(),
        Some(CONTAINER_USER),
        &["cdc-agent", "--version"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with("cdc-agent "), "{version}");
    print!("{version}");

    let out = chroot(
        root.path(),
        Some(CONTAINER_USER),
        &[
            "cdc-agent",
            "validate",
            "--config",
            "/etc/cdc-agent/cdc-agent.toml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("app-db (postgres)"), "{summary}");
}

#[test]
fn the_kubernetes_configmap_holds_a_valid_configuration() {
    let pod = repo("deploy/kubernetes/pod.yaml");
    let root = scratch_copy();
    mount(
        root.path(),
        &yaml_block(&pod, "cdc-agent.toml"),
        &[("app-db.toml", &yaml_block(&pod, "app-db.toml"))],
    );
    let out = chroot(
        root.path(),
        Some(CONTAINER_USER),
        &[
            "cdc-agent",
            "validate",
            "--config",
            "/etc/cdc-agent/cdc-agent.toml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("app-db (postgres)"));
}

#[test]
fn the_image_installs_the_packages_the_minimal_root_was_built_with() {
    let dockerfile = repo("Dockerfile");
    let runtime = dockerfile
        .split("FROM debian:bookworm-slim")
        .nth(1)
        .expect("a debian:bookworm-slim runtime stage");
    let image: Vec<&str> = runtime
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("an apt-get install line in the runtime stage")
        .split_whitespace()
        .filter(|w| !w.starts_with('-') && !matches!(*w, "&&" | "apt-get" | "install" | "\\"))
        .collect();
    let script = repo("scripts/minimal-root");
    let include = script
        .split("--include=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("scripts/minimal-root passes --include=");
    let root: Vec<&str> = include.split(',').collect();
    assert_eq!(
        image, root,
        "Dockerfile runtime packages vs scripts/minimal-root --include"
    );
    assert!(
        runtime.contains("USER 65532:65532"),
        "the image runs as a non-root user"
    );
    assert!(runtime.contains("HEALTHCHECK") && runtime.contains("/healthz"));
}
