//! The test harness: temp projects and the real `lowtouch` executable.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const LOWTOUCH: &str = env!("CARGO_BIN_EXE_lowtouch");

/// A project in a temp dir. Dropping it stops anything its runs left behind.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A copy of the repository's demo (pipelines and environments) with free ports, so
    /// tests can run side by side.
    pub fn demo() -> Project {
        let p = Project::empty();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("repo root");
        for dir in ["pipelines", "environments", "templates", "testdata"] {
            copy_dir(&repo.join(dir), &p.path().join(dir));
        }
        let env = p.read("environments/local.yaml");
        let env = env
            .replace(
                "primary_port: 17101",
                &format!("primary_port: {}", free_port()),
            )
            .replace(
                "backup_port: 17102",
                &format!("backup_port: {}", free_port()),
            )
            .replace(
                "replication_port: 17111",
                &format!("replication_port: {}", free_port()),
            );
        p.write("environments/local.yaml", &env);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn write_executable(&self, rel: &str, content: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(rel, content);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// `lowtouch -C <project> ARGS…`
    pub fn lowtouch(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(LOWTOUCH);
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        Run { cmd }
    }

    /// Every pid file of the demo environment names a dead process.
    pub fn assert_nothing_left_running(&self) {
        let dir = self.path().join(".lowtouch/envs/local");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "pid") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let pid: i32 = text
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                assert!(
                    pid == 0 || !alive(pid),
                    "{} still runs (pid {pid})",
                    p.display()
                );
            }
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // A server or daemon a failed test left behind: every lowtouch started for this
        // project names it with `-C`.
        let me = self.path().as_os_str().as_encoded_bytes().to_vec();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.first().is_some_and(|a| *a == LOWTOUCH.as_bytes())
                && args
                    .windows(2)
                    .any(|w| w[0] == b"-C" && w[1] == me.as_slice());
            if ours {
                // SAFETY: signalling a process this test started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // Stop whatever a failed test left running (by recorded pid).
        let dir = self.path().join(".lowtouch/envs");
        for env in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            for e in std::fs::read_dir(env.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.path().extension().is_some_and(|x| x == "pid")
                    && let Some(pid) = std::fs::read_to_string(e.path())
                        .ok()
                        .and_then(|t| t.split_whitespace().next()?.parse::<i32>().ok())
                {
                    // SAFETY: plain kill of a process group we started in a test.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

pub struct Run {
    pub cmd: Command,
}

pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.cmd.env(k, v);
        self
    }

    pub fn output(mut self) -> Done {
        let out: Output = self.cmd.output().expect("run lowtouch");
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lowtouch")
    }
}

impl Done {
    pub fn expect_code(self, code: i32) -> Done {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A port to give a component, below Linux's ephemeral range (32768 and up): a port that
/// `bind(":0")` hands out is one an outgoing connection — a daemon dialing the router —
/// can take before the component given it listens ("Address already in use", seen in
/// CI). Ports from 20000 to 31999, each handed out once per test process (the counter
/// is the test harness's, not lowtouch's), and free when handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % 12_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((start + n) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .chars()
                .next();
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Polls `cond` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `history --json` as values.
pub fn history(p: &Project) -> Vec<serde_json::Value> {
    let out = p
        .lowtouch(&["history", "--runs", "--json", "--limit", "1000"])
        .output()
        .expect_code(0);
    serde_json::from_str(&out.stdout).expect("history json")
}

/// The newest run's steps, each with its scenario (`history --run last --steps --json`).
pub fn last_steps(p: &Project) -> Vec<serde_json::Value> {
    let out = p
        .lowtouch(&["history", "--run", "last", "--steps", "--json"])
        .output()
        .expect_code(0);
    serde_json::from_str(&out.stdout).expect("steps json")
}

/// Runs git in `dir` with a test identity; panics with git's message when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=lowtouch-test",
            "-c",
            "user.email=test@lowtouch.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `file` in the repository at `dir` and commits it.
pub fn commit(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", &format!("change {file}")]);
}

/// A product repository with one commit, and a project whose pipeline `watched` follows
/// its `main` (its one scenario echoes). `paths` are the repository's path filters.
pub fn watched_project(paths: &str) -> (tempfile::TempDir, Project) {
    let product = tempfile::tempdir().unwrap();
    git(product.path(), &["init", "-q"]);
    commit(product.path(), "src/engine.txt", "v1\n");
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write("pipelines/s.scn", "echo ran\n");
    p.write(
        "pipelines/watched.yaml",
        &format!(
            "environment: local\nscenarios: [s.scn]\nrepositories:\n  exchange:\n    role: product\n    url: {}\n    follow: [main]\n{paths}",
            product.path().display()
        ),
    );
    (product, p)
}

/// SIGTERM to a child this test started, then its exit code.
pub fn stop(mut child: Child) -> Option<i32> {
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().ok().and_then(|s| s.code())
}

/// A child's stderr, collected as it comes (its stderr must be piped).
pub fn log_of(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead;
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l = log.clone();
    let stderr = child.stderr.take().expect("a piped stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            l.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    log
}
