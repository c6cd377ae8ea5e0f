//! The brokers under measurement: `porter broker --config FILE` child
//! processes, and what `/proc` says about each of them.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (every thread of the
//! process, in clock ticks of 1/100 s: Linux reports `USER_HZ`, which is 100
//! on every architecture Porter runs on). Peak RSS is `VmHWM` of
//! `/proc/<pid>/status`, read just before the broker is stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// How long a broker may take to answer `/readyz`.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// How long a broker may take to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// What `/proc` says about one process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Peak resident set size (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

/// One `porter broker` child process.
pub struct BrokerProcess {
    child: Child,
    ready_url: String,
    /// Where its standard error goes.
    pub log: PathBuf,
}

impl BrokerProcess {
    /// Starts `exe broker --config config` listening on `http_port`, its
    /// standard error in `log` at `RUST_LOG=warn`, or at the filter in
    /// `PORTER_BENCH_BROKER_LOG` (say `warn,sqlx::query=debug` to see
    /// every statement and its time).
    pub fn spawn(exe: &Path, config: &Path, http_port: u16, log: PathBuf) -> anyhow::Result<BrokerProcess> {
        let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let listen = format!("127.0.0.1:{http_port}");
        let child = Command::new(exe)
            .arg("broker")
            .arg("--config")
            .arg(config)
            .env("PORTER_HTTP_LISTEN", &listen)
            .env_remove("PORTER_STORE_URL")
            .env_remove("PORTER_AMQP_URL")
            .env(
                "RUST_LOG",
                std::env::var("PORTER_BENCH_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting {} broker", exe.display()))?;
        Ok(BrokerProcess {
            child,
            ready_url: format!("http://{listen}/readyz"),
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/readyz` answers 200; an error if the broker exits or
    /// is not ready within a minute.
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < READY_LIMIT {
            self.ensure_running()?;
            if let Ok(r) = client.get(&self.ready_url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "broker {} was not ready within {} s (log: {})",
            self.pid(),
            READY_LIMIT.as_secs(),
            self.log.display()
        )
    }

    /// An error if the broker has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!(
                "broker {} exited with {status} (log: {})",
                self.pid(),
                self.log.display()
            ),
        }
    }

    /// Its CPU time and peak RSS so far.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage_of(self.pid())
    }

    /// Stops it with SIGTERM (an orderly shutdown), killing it if it has not
    /// exited within 30 s.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < STOP_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let status = self.child.wait()?;
        anyhow::bail!(
            "broker {pid} did not stop within {} s of SIGTERM; killed ({status})",
            STOP_LIMIT.as_secs()
        )
    }
}

impl Drop for BrokerProcess {
    /// A broker left running by an error is killed, never left behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time and peak RSS of process `pid` (`/proc/<pid>/stat` and `status`).
pub fn usage_of(pid: u32) -> anyhow::Result<Usage> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    Ok(Usage {
        cpu_secs: cpu_ticks(&stat).with_context(|| format!("/proc/{pid}/stat has no CPU times"))? as f64
            / TICKS_PER_SEC,
        peak_rss_bytes: peak_rss_kib(&status).with_context(|| format!("/proc/{pid}/status has no VmHWM"))? * 1024,
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so the fields
/// are counted from its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so field n is index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB.
fn peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line["VmHWM:".len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime and stime are fields 14 and 15, counted past a command name
    /// that holds spaces and parentheses; a short line gives nothing.
    #[test]
    fn cpu_ticks_count_fields_after_the_name() {
        let stat = "4242 (porter (x) y) S 1 4242 4242 0 -1 4194304 1000 0 0 0 250 37 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(287));
        assert_eq!(cpu_ticks("4242 (porter) S 1 2"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    /// VmHWM is read in KiB; a status without it gives nothing.
    #[test]
    fn peak_rss_reads_vmhwm() {
        let status = "Name:\tporter\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(peak_rss_kib(status), Some(51234));
        assert_eq!(peak_rss_kib("Name:\tporter\n"), None);
    }

    /// The bench process's own usage is readable: some CPU, some memory.
    #[test]
    fn own_usage_is_readable() {
        let usage = usage_of(std::process::id()).unwrap();
        assert!(usage.peak_rss_bytes > 0);
        assert!(usage.cpu_secs >= 0.0);
    }
}
