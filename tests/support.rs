//! Helpers for end-to-end tests: the workspace's real binaries, temp dirs.

#[path = "liar.rs"]
pub mod liar;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Path of a `watt-node` crate binary, built once per test process so the
/// tests run the same code as the checkout.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            // The same command as scripts/test.sh, so this is a no-op there
            // (a narrower build would unify features differently and rebuild).
            .args(["build", "--quiet", "--workspace", "--all-targets"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building watt-node binaries failed");
    });
    target_dir().join("debug").join(name)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("watt-e2e-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Output of a finished command, as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(bin_name: &str, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(bin(bin_name));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("binary finishes");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A network of `watt-node run` processes made by `watt-node init --new-network`.
pub struct Network {
    pub dir: TempDir,
    pub base_port: u16,
    pub n: usize,
    pub children: Vec<Option<std::process::Child>>,
}

fn port_free(p: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() && std::net::TcpListener::bind(("127.0.0.1", p + 1000)).is_ok()
}

impl Network {
    /// Writes the network's files and starts every validator.
    pub fn start(label: &str, n: usize, ledger_ms: u64, day_seconds: u64) -> Network {
        Network::start_with(label, n, ledger_ms, day_seconds, &[])
    }

    /// [`Network::start`] with more `watt-node init` arguments (founders, grace).
    pub fn start_with(label: &str, n: usize, ledger_ms: u64, day_seconds: u64, extra: &[&str]) -> Network {
        let mut net = Network::create(label, n, ledger_ms, day_seconds, extra);
        for i in 0..n {
            net.start_node(i);
        }
        net
    }

    /// Writes the network's files (`watt-node init`) without starting anyone.
    pub fn create(label: &str, n: usize, ledger_ms: u64, day_seconds: u64, extra: &[&str]) -> Network {
        let dir = TempDir::new(label);
        // Distinct ranges per network in this process (tests run in parallel),
        // spread by process id across processes; then skip anything taken.
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let slot = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let spread = (std::process::id() % 200) as u16 * 50;
        let mut base = 21_000 + spread + slot * 20;
        while !(0..n as u16).all(|i| port_free(base + i)) {
            base += 20 * 16;
        }
        let (n_s, base_s, ledger_s, day_s) =
            (n.to_string(), base.to_string(), ledger_ms.to_string(), day_seconds.to_string());
        let mut args = vec![
            "init",
            "--new-network",
            "--validators",
            &n_s,
            "--dir",
            dir.path().to_str().unwrap(),
            "--port",
            &base_s,
            "--ledger-ms",
            &ledger_s,
            "--day-seconds",
            &day_s,
            "--network",
            label,
        ];
        args.extend_from_slice(extra);
        let out = run("watt-node", &args, None);
        assert_eq!(out.code, 0, "init failed: {}", out.stderr);
        Network { dir, base_port: base, n, children: (0..n).map(|_| None).collect() }
    }

    pub fn config(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{i}.toml"))
    }

    pub fn start_node(&mut self, i: usize) {
        self.start_node_with_env(i, &[]);
    }

    /// Starts node i with more environment (a fake clock, log levels).
    pub fn start_node_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{i}.log"))).expect("log file");
        let child = Command::new(bin("watt-node"))
            .args(["run", "--config", self.config(i).to_str().unwrap()])
            .env("RUST_LOG", std::env::var("WATT_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("watt-node starts");
        self.children[i] = Some(child);
    }

    /// SIGKILL: no clean shutdown.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn admin(&self, i: usize) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.base_port + 1000 + i as u16).into()
    }

    pub fn listen(&self, i: usize) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.base_port + i as u16).into()
    }

    /// `/status` of node i, if it answers.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&self.admin(i), std::time::Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /status HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        serde_json::from_str(out.split_once("\r\n\r\n")?.1).ok()
    }

    pub fn seq(&self, i: usize) -> u64 {
        self.status(i).and_then(|s| s["ledger"]["seq"].as_u64()).unwrap_or(0)
    }

    /// Waits until `cond` holds or `secs` pass.
    pub fn wait_for(&self, secs: u64, mut cond: impl FnMut(&Network) -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if cond(self) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        false
    }

    pub fn genesis(&self) -> watt_core::ledger::Genesis {
        let bytes = std::fs::read(self.dir.path().join("genesis.json")).expect("genesis");
        watt_core::ledger::Genesis::from_json(&bytes).expect("valid genesis")
    }

    pub fn node_key(&self, i: usize) -> watt_core::crypto::Keypair {
        node_key_in(self.dir.path(), i)
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{i}.log"))).unwrap_or_default()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.n {
            self.kill(i);
        }
    }
}

/// Validator `i`'s key as `watt-node init` wrote it under `dir`.
pub fn node_key_in(dir: &Path, i: usize) -> watt_core::crypto::Keypair {
    let text = std::fs::read_to_string(dir.join(format!("node-{i}.key"))).expect("key");
    let seed = watt_core::address::decode_secret(text.trim()).expect("secret");
    watt_core::crypto::Keypair::from_seed(seed).expect("key")
}

/// A new account key made by `watt keys new`: (address, 24 words).
pub fn new_account() -> (String, String) {
    let dir = TempDir::new("account");
    let out = run("watt", &["--data-dir", dir.path().to_str().unwrap(), "keys", "new", "--json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    (v["address"].as_str().expect("address").to_string(), v["mnemonic"].as_str().expect("mnemonic").to_string())
}
