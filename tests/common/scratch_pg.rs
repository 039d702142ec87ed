//! A PostgreSQL cluster of the test's own: initdb into a temp dir as the `postgres` OS user
//! (as scripts/stack.d/postgres.sh does), started on a free port with extra postgresql.conf
//! lines, killed and removed on drop. For checks that need a server-wide setting the shared
//! stack must keep (wal_level, …): those are never changed on the shared servers.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{free_port, lost_port_race};

/// A running scratch cluster. Local and host connections are trusted (any password).
pub struct ScratchPostgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("PG_BIN_DIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    PathBuf::from(dir).join(name)
}

fn os_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).arg(name).output().unwrap();
        assert!(
            out.status.success(),
            "no OS user {name}: install the server package"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// Waits until the server on `port` accepts connections; its log if it exited instead.
fn wait_ready(port: u16, child: &mut Child, log: &std::path::Path) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let ready = Command::new(pg_bin("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .unwrap();
        if ready.success() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!(
                "({status}) {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "scratch postgres did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the postmaster on `data` as the `postgres` OS user, its output into `log`.
fn spawn_postgres(data: &std::path::Path, log: std::fs::File) -> Child {
    let (uid, gid) = os_user("postgres");
    Command::new(pg_bin("postgres"))
        .arg("-D")
        .arg(data)
        .current_dir("/")
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl ScratchPostgres {
    /// initdb + start with `extra_conf` appended to postgresql.conf; waits until it accepts
    /// connections.
    pub fn start(extra_conf: &str) -> Self {
        let (uid, gid) = os_user("postgres");
        let dir = tempfile::Builder::new()
            .prefix("cdc-scratch-pg")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let out = Command::new(pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth=trust",
            ])
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        let mut attempt = 1;
        loop {
            let port = free_port();
            let conf = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
                 max_connections = 30\nshared_buffers = 16MB\nfsync = off\n{extra_conf}\n",
                dir.path().display()
            );
            std::fs::write(data.join("postgresql.conf"), format!("{base_conf}{conf}")).unwrap();
            let log_path = dir.path().join("postgres.log");
            let log = std::fs::File::create(&log_path).unwrap();
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).unwrap();
            let mut child = spawn_postgres(&data, log);
            match wait_ready(port, &mut child, &log_path) {
                Ok(()) => return ScratchPostgres { port, dir, child },
                Err(log) if lost_port_race(&log) && attempt < 5 => attempt += 1,
                Err(log) => panic!("scratch postgres exited: {log}"),
            }
        }
    }

    /// Moves the cluster to a new timeline, as a promotion or a point-in-time recovery does:
    /// a clean shutdown, a start in recovery (`standby.signal`, nothing to replay), then
    /// `pg_ctl promote`. Same data (replication slots included), same system identifier,
    /// same port; the timeline goes up by one.
    pub fn restart_on_new_timeline(&mut self) {
        let (uid, gid) = os_user("postgres");
        let data = self.dir.path().join("data");
        // SIGINT: fast shutdown, with a shutdown checkpoint.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "scratch postgres did not shut down"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let signal = data.join("standby.signal");
        std::fs::write(&signal, "").unwrap();
        std::os::unix::fs::chown(&signal, Some(uid), Some(gid)).unwrap();
        let log_path = self.dir.path().join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap();
        self.child = spawn_postgres(&data, log);
        if let Err(log) = wait_ready(self.port, &mut self.child, &log_path) {
            panic!("scratch postgres did not restart in recovery: {log}");
        }
        let out = Command::new(pg_bin("pg_ctl"))
            .args(["promote", "-w", "-D"])
            .arg(&data)
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl promote: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A URL for `user` on `database`.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, the postmaster takes its backends along.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
