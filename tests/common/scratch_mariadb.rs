//! A MariaDB server of the test's own: mariadb-install-db into a temp dir, mariadbd on a free
//! port with extra my.cnf lines, killed and removed on drop (see scripts/stack.d/mariadb.sh).
//! For checks of server-wide settings (binlog_format, …) the shared stack must keep.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::scratch_pg::free_port;

/// A running scratch server. OS root reaches it as `root` over [`ScratchMariadb::sql`].
pub struct ScratchMariadb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl ScratchMariadb {
    /// Installs and starts a server with `extra_cnf` appended to `[mysqld]`.
    pub fn start(extra_cnf: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cdc-scratch-mariadb")
            .tempdir()
            .unwrap();
        let path = dir.path().display().to_string();
        let _ = Command::new("chown").args(["mysql:mysql", &path]).status();
        let port = free_port();
        let cnf = format!(
            "[client]\nsocket = {path}/mariadb.sock\n\n[mysqld]\nuser = mysql\ndatadir = {path}/data\n\
             socket = {path}/mariadb.sock\npid-file = {path}/mariadb.pid\nlog-error = {path}/mariadb.err\n\
             port = {port}\nbind-address = 127.0.0.1\nskip-name-resolve\ninnodb_buffer_pool_size = 16M\n\
             server_id = 1\nlog_bin = {path}/data/mariadb-bin\n{extra_cnf}\n"
        );
        std::fs::write(dir.path().join("my.cnf"), cnf).unwrap();
        let defaults = format!("--defaults-file={path}/my.cnf");
        let out = Command::new("mariadb-install-db")
            .args([
                defaults.as_str(),
                "--user=mysql",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let child = Command::new("mariadbd")
            .arg(&defaults)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = ScratchMariadb { port, dir, child };
        let start = Instant::now();
        while !Command::new("mariadb-admin")
            .args([defaults.as_str(), "--protocol=socket", "-uroot", "ping"])
            .env_remove("MYSQL_HOST")
            .env_remove("MYSQL_TCP_PORT")
            .env_remove("MYSQL_PWD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "scratch mariadb did not start: {}",
                std::fs::read_to_string(me.dir.path().join("mariadb.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    /// Runs SQL as root through the socket (the mariadb client, unix_socket authentication).
    pub fn sql(&self, statements: &str) {
        let out = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}/my.cnf",
                self.dir.path().display()
            ))
            .args(["--protocol=socket", "-uroot", "-e", statements])
            // The stack's environment (MYSQL_HOST, …) would point the client at the shared server.
            .env_remove("MYSQL_HOST")
            .env_remove("MYSQL_TCP_PORT")
            .env_remove("MYSQL_PWD")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{statements}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ScratchMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
