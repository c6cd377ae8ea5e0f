//! A private RabbitMQ node for tests that restart or reconfigure RabbitMQ,
//! so the shared node on 5672 is never touched. It runs from a temporary
//! folder, on free ports, with no plugins (or only the management plugin,
//! [`PrivateRabbit::start_with_management`]), and is stopped (by its node
//! name) when dropped. A node can also be killed the hard way
//! ([`PrivateRabbit::sigkill`]): SIGKILL to its own `beam.smp`, found by
//! PID and checked against its node name. Several nodes form a cluster in
//! [`super::rabbit_cluster`].

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PrivateRabbit {
    pub url: String,
    /// `http://127.0.0.1:<port>` of the management API, when enabled.
    pub management_url: Option<String>,
    node: String,
    port: u16,
    dir: tempfile::TempDir,
    /// SIGKILLed by the test: nothing to stop when dropped.
    killed: bool,
    /// Its `beam.smp`'s PID, once asked for.
    beam: std::sync::OnceLock<u32>,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_port(port: u16, what: &str) {
    let started = Instant::now();
    while !port_open(port) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{what} did not open in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl PrivateRabbit {
    /// Starts a new node and waits until it accepts AMQP connections.
    pub fn start() -> PrivateRabbit {
        PrivateRabbit::start_with(false)
    }

    /// Starts a new node with the management plugin (its `enabled_plugins`
    /// file lists only `rabbitmq_management`) on a free loopback port, and
    /// waits until both AMQP and the management API answer.
    pub fn start_with_management() -> PrivateRabbit {
        PrivateRabbit::start_with(true)
    }

    fn start_with(management: bool) -> PrivateRabbit {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let dist = free_port();
        let node = format!("portertest{port}@localhost");
        let mut conf = format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n");
        let management_port = management.then(free_port);
        if let Some(m) = management_port {
            conf.push_str(&format!("management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {m}\n"));
        }
        let plugins = if management {
            "[rabbitmq_management].\n"
        } else {
            "[].\n"
        };
        std::fs::write(dir.path().join("plugins"), plugins).unwrap();
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).unwrap();
        // The server runs as the rabbitmq user: it must own its folder.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(dir.path())
            .status();
        let r = PrivateRabbit {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            management_url: management_port.map(|m| format!("http://127.0.0.1:{m}")),
            node,
            port,
            dir,
            killed: false,
            beam: std::sync::OnceLock::new(),
        };
        let status = r
            .command("rabbitmq-server", &["-detached"], dist)
            .status()
            .expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server -detached failed");
        r.wait_open(true);
        if let Some(m) = management_port {
            wait_port(m, "management API");
        }
        r
    }

    fn command(&self, program: &str, args: &[&str], dist: u16) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(program);
        c.args(args)
            .env(
                "PATH",
                format!(
                    "/usr/sbin:/usr/bin:/sbin:/bin:{}",
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("plugins"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    }

    /// Runs `rabbitmqctl -n <this node> <args>` and asserts that it succeeds.
    pub fn ctl(&self, args: &[&str]) {
        self.ctl_output(args);
    }

    /// Runs `rabbitmqctl -n <this node> <args>` and returns what it printed
    /// (`--quiet` keeps only the answer), or panics with its error output.
    pub fn ctl_output(&self, args: &[&str]) -> String {
        self.try_ctl(args)
            .unwrap_or_else(|e| panic!("rabbitmqctl -n {} {args:?} failed: {e}", self.node))
    }

    /// Runs `rabbitmqctl -n <this node> --quiet <args>`: what it printed,
    /// or, when it fails, everything it printed.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.node.as_str(), "--quiet"];
        full.extend_from_slice(args);
        let output = self
            .command("rabbitmqctl", &full, 0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("rabbitmqctl runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{}{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The Erlang node name, `portertest<port>@localhost`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The AMQP port this node listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID of this node's `beam.smp`, as the node itself tells it
    /// (`os:getpid()`, asked once), checked against `/proc` each time: the
    /// process is a `beam.smp` whose environment names this node.
    pub fn beam_pid(&self) -> u32 {
        let pid = *self.beam.get_or_init(|| {
            let answer = self.ctl_output(&["eval", "os:getpid()."]);
            answer
                .trim()
                .trim_matches('"')
                .parse()
                .unwrap_or_else(|e| panic!("os:getpid() answered {answer:?}: {e}"))
        });
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(
            comm.trim(),
            "beam.smp",
            "PID {pid} of node {} is not a beam.smp",
            self.node
        );
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let name = format!("RABBITMQ_NODENAME={}", self.node);
        assert!(
            environ.split(|b| *b == 0).any(|v| v == name.as_bytes()),
            "PID {pid} does not run node {}",
            self.node
        );
        pid
    }

    /// Kills this node the hard way: SIGKILL to its `beam.smp` (no
    /// shutdown, connections cut by the kernel), then waits until its
    /// AMQP port is closed. The node is not stopped again when dropped.
    pub fn sigkill(&mut self) {
        let pid = self.beam_pid();
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -KILL {pid} failed");
        self.killed = true;
        let started = Instant::now();
        // Gone, or a zombie its parent has not reaped yet.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
            })
        };
        while alive() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "beam.smp {pid} still there 10 s after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.wait_open(false);
    }

    fn wait_open(&self, open: bool) {
        let started = Instant::now();
        while port_open(self.port) != open {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "RabbitMQ node did not {} in time",
                if open { "open" } else { "close" }
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the RabbitMQ application (every connection drops), then starts
    /// it again: a broker restart as clients see it.
    pub fn restart(&self, down_for: Duration) {
        self.ctl(&["stop_app"]);
        self.wait_open(false);
        std::thread::sleep(down_for);
        self.ctl(&["start_app"]);
        self.wait_open(true);
    }

    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        // With the PID file, `stop` returns once the node's process is gone.
        let pid_file = self.dir.path().join("pid").display().to_string();
        let full = ["-n", self.node.as_str(), "stop", pid_file.as_str()];
        let _ = self.command("rabbitmqctl", &full, 0).status();
    }
}
