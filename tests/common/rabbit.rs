//! A private RabbitMQ node for tests that restart or reconfigure RabbitMQ,
//! so the shared node on 5672 is never touched. It runs from a temporary
//! folder, on free ports, with no plugins (or only the management plugin,
//! [`PrivateRabbit::start_with_management`]), and is stopped (by its node
//! name) when dropped.

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

    fn ctl(&self, args: &[&str]) {
        let mut full = vec!["-n", self.node.as_str()];
        full.extend_from_slice(args);
        let status = self
            .command("rabbitmqctl", &full, 0)
            .status()
            .expect("rabbitmqctl runs");
        assert!(status.success(), "rabbitmqctl {args:?} failed");
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
        let mut full = vec!["-n", self.node.as_str(), "stop"];
        full.truncate(3);
        let _ = self.command("rabbitmqctl", &full, 0).status();
    }
}
