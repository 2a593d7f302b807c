//! A `redis-server` of the test's own: a free port on 127.0.0.1, nothing saved to disk, killed with the test.
#![allow(dead_code, unreachable_pub)]

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` is not installed: these tests need it, and
    /// must not pass without it.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("rpcpeer-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the redis-server's directory");
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after [`RedisServer::kill`]: empty,
    /// as nothing was saved).
    pub fn restart(&mut self) {
        self.kill();
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not installed, and these tests need one: \
                 install it (Debian, Ubuntu: `apt-get install -y redis-server`; \
                 .ci/run does this when it is missing)"
            ),
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not accept connections on port {} within 20 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
