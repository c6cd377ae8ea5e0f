//! A private PostgreSQL instance for tests that restart PostgreSQL, so the
//! shared server on 5432 is never touched. `initdb` in a temporary folder
//! (owned by the `postgres` user, which the server must run as), a free
//! port, trust authentication on loopback; stopped when dropped.

use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub url: String,
    dir: tempfile::TempDir,
    port: u16,
}

fn bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL server binaries are installed");
    let mut found: Vec<PathBuf> = versions
        .filter_map(|v| Some(v.ok()?.path().join("bin").join(name)))
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL version")
}

impl PrivatePostgres {
    /// Creates and starts a new cluster.
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let pg = PrivatePostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            port,
        };
        let data = pg.data();
        pg.run(
            &bin("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.ctl(&["start", "-w", "-t", "60"]);
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &PathBuf, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("runuser runs");
        assert!(status.success(), "{} {args:?} failed", program.display());
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.data();
        let socket = self.dir.path().display().to_string();
        let options = format!("-p {} -k {socket} -c listen_addresses=127.0.0.1 -c fsync=on", self.port);
        let log = self.dir.path().join("server.log").display().to_string();
        let mut all = vec!["-D", data.as_str(), "-o", options.as_str(), "-l", log.as_str()];
        all.extend_from_slice(args);
        self.run(&bin("pg_ctl"), &all);
    }

    /// Stops the server the way a crash would (`immediate`: no checkpoint,
    /// connections cut), waits `down`, and starts it again.
    pub fn restart(&self, down: std::time::Duration) {
        self.ctl(&["stop", "-m", "immediate", "-w"]);
        std::thread::sleep(down);
        self.ctl(&["start", "-w", "-t", "60"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .args(["-D", &data, "stop", "-m", "immediate", "-w"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Runs `test` with the URL of a fresh schema of `PORTER_TEST_PG_URL` (which
/// must be reachable), drops the schema afterwards, and passes on the test's
/// panic: a store test on PostgreSQL that leaves nothing behind.
pub async fn in_fresh_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use sqlx::{Connection as _, Executor as _};
    let base =
        std::env::var("PORTER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {base}: {e}"));
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let outcome = tokio::spawn(test(url)).await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
