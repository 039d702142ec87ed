//! A private MariaDB server for tests that must change server-wide settings (binlog format,
//! row image, purged binlogs), which the shared stack server must never see: installed with
//! `mariadb-install-db` into a temporary directory, started on a free loopback port with extra
//! `my.cnf` lines, killed when dropped. Configured like scripts/stack.d/mariadb.sh.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{free_port, lost_port_race};

/// Admin user of every scratch server (all privileges, TCP).
pub const ADMIN: &str = "cdc_admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "cdc_admin";

/// A running scratch server.
pub struct ScratchMariadb {
    /// Its loopback port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// Writes `my.cnf` for a server on `port`.
fn write_cnf(d: &std::path::Path, port: u16, extra: &str) {
    // Own tmpdir: with the default /tmp, a temporary table's file of one server was seen
    // deleted under it ("Error on delete of '/tmp/#sql-temptable-…'").
    std::fs::write(
        d.join("my.cnf"),
        format!(
            "[client]\nsocket = {sock}\nport = {port}\n\n[mysqld]\nuser = root\n\
             datadir = {data}\nsocket = {sock}\npid-file = {d}/mariadb.pid\n\
             log-error = {d}/mariadb.err\ntmpdir = {d}\nport = {port}\nbind-address = 127.0.0.1\n\
             skip-name-resolve\ncharacter-set-server = utf8mb4\n\
             innodb_buffer_pool_size = 32M\nserver_id = 1\nlog_bin = {data}/mariadb-bin\n\
             binlog_format = ROW\nbinlog_row_image = FULL\nbinlog_row_metadata = FULL\n\
             gtid_domain_id = 0\n{extra}\n",
            sock = d.join("mariadb.sock").display(),
            data = d.join("data").display(),
            d = d.display(),
        ),
    )
    .unwrap();
}

/// Runs SQL as root over the socket of the server in `dir`.
fn root_sql(dir: &std::path::Path, sql: &str) -> Result<String, String> {
    let out = tool("mariadb")
        .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
        // root authenticates by unix socket; the stack's MYSQL_HOST (set for the tests)
        // would otherwise turn the client to TCP, where that fails.
        .env_remove("MYSQL_HOST")
        .args(["--host=localhost", "-uroot", "-N", "-e", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Waits until root can log in and the admin user exists; the server's error log if it
/// exited instead.
fn wait_ready(dir: &std::path::Path, child: &mut Child) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let admin = format!(
            "CREATE USER IF NOT EXISTS '{ADMIN}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';
             GRANT ALL PRIVILEGES ON *.* TO '{ADMIN}'@'%' WITH GRANT OPTION;"
        );
        if root_sql(dir, &admin).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!(
                "({status}) {}",
                std::fs::read_to_string(dir.join("mariadb.err")).unwrap_or_default()
            ));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "scratch mariadbd did not answer in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A MariaDB tool with the stack's client variables removed (`MYSQL_HOST` would send the
/// client to the stack server over TCP instead of the scratch socket).
fn tool(bin: &str) -> Command {
    let mut c = Command::new(find(bin));
    for v in [
        "MYSQL_HOST",
        "MYSQL_PORT",
        "MYSQL_TCP_PORT",
        "MYSQL_UNIX_PORT",
        "MYSQL_PWD",
    ] {
        c.env_remove(v);
    }
    c
}

/// `bin` from `MYSQL_BIN_DIR` when that is set (scripts/my-versions env: the server version
/// under test, so scratch servers run it too), else from the system's MariaDB packages.
fn find(bin: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("MYSQL_BIN_DIR").filter(|d| !d.is_empty()) {
        let p = PathBuf::from(&dir).join(bin);
        // Never a silent fall-back to the system's MariaDB: a test run against another
        // server (MySQL has no mariadbd) would pass on a version it did not test.
        assert!(
            p.exists(),
            "scratch servers are MariaDB servers, and MYSQL_BIN_DIR ({}) has no {bin}: this \
             test needs a MariaDB under test",
            PathBuf::from(dir).display()
        );
        return p;
    }
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = PathBuf::from(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(bin)
}

impl ScratchMariadb {
    /// Installs and starts a server with `extra` lines under `[mysqld]`.
    pub fn start(extra: &str) -> ScratchMariadb {
        let dir = tempfile::tempdir().unwrap();
        let cnf = dir.path().join("my.cnf");
        write_cnf(dir.path(), free_port(), extra);
        // Several mariadb-install-db at once crash (seen: a segfault of its bootstrap
        // server): the tests of one binary install one after another.
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        let out = tool("mariadb-install-db")
            .arg(format!("--defaults-file={}", cnf.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .output()
            .expect("mariadb-install-db (apt install mariadb-server)");
        drop(installing);
        assert!(
            out.status.success(),
            "mariadb-install-db failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let mut attempt = 1;
        loop {
            let port = free_port();
            write_cnf(dir.path(), port, extra);
            let mut child = tool("mariadbd")
                .arg(format!("--defaults-file={}", cnf.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mariadbd");
            match wait_ready(dir.path(), &mut child) {
                Ok(()) => return ScratchMariadb { port, dir, child },
                Err(log) if lost_port_race(&log) && attempt < 5 => {
                    attempt += 1;
                    let _ = std::fs::remove_file(dir.path().join("mariadb.err"));
                }
                Err(log) => panic!("scratch mariadbd exited: {log}"),
            }
        }
    }

    /// Runs SQL as root over the socket.
    pub fn root_sql(&self, sql: &str) -> Result<String, String> {
        root_sql(self.dir.path(), sql)
    }

    /// Runs SQL as root, panicking on failure.
    pub fn sql(&self, sql: &str) -> String {
        self.root_sql(sql)
            .unwrap_or_else(|e| panic!("scratch SQL `{sql}` failed: {e}"))
    }

    /// The admin URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

impl Drop for ScratchMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
