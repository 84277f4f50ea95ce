//! The smaller holes of issue 12 §5: a client that talked to whoever listened at
//! `serve.sock`, a `--set` value equal to a secret stored as it was, and a store anyone
//! on the machine could read.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use crate::harness::{Project, wait_until};

/// The uid of `nobody`: an account that is not the one running the tests.
const NOBODY: u32 = 65534;

#[test]
fn a_server_socket_of_another_user_is_refused_before_anything_is_sent() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    std::fs::create_dir_all(p.path().join(".lowtouch")).unwrap();
    let socket = p.path().join(".lowtouch/serve.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    // Another user's socket in a directory they could write to (the test runs as root,
    // which may give a file away; an ordinary user meets such a socket made by another).
    std::os::unix::fs::chown(&socket, Some(NOBODY), Some(NOBODY)).unwrap();

    // A client that trusts the socket sends its command line and waits for an answer
    // that never comes: the wait is bounded, the listener tells whether it connected.
    let mut client = p.lowtouch(&["run", "--set", "token=hunter2"]).spawn();
    let finished = wait_until(Duration::from_secs(30), || {
        client.try_wait().unwrap().is_some()
    });
    let connected = listener.accept().is_ok();
    if !finished {
        let _ = client.kill();
    }
    let code = client.wait().unwrap().code();
    let mut stderr = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!connected, "the client talked to the other user's socket");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("serve.sock") && stderr.contains("uid 65534"),
        "the refusal does not name the socket and its owner:\n{stderr}"
    );
}

#[test]
fn a_server_of_another_user_is_refused_even_behind_a_socket_file_of_ours() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    // The project is `nobody`'s; `nobody` starts a server in it.
    for path in [
        p.path(),
        &p.path().join("environments"),
        &p.path().join("environments/local.yaml"),
    ] {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let mut run = p.lowtouch(&["serve", "--listen", "127.0.0.1:0", "--poll-interval", "1h"]);
    run.cmd.uid(NOBODY).gid(NOBODY);
    let mut server = run.spawn();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let api = lines.nth(1).unwrap().unwrap();
    assert!(api.contains("local API on"), "{api}");
    // The socket file is then given to us: only the listening process tells the truth.
    let socket = p.path().join(".lowtouch/serve.sock");
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    std::os::unix::fs::chown(&socket, Some(uid), Some(gid)).unwrap();

    let out = p.lowtouch(&["status"]).output().expect_code(3);
    assert!(
        out.stderr.contains("the process listening on it runs as")
            && out.stderr.contains("uid 65534"),
        "{}",
        out.stderr
    );
    crate::harness::stop(server);
}

#[test]
fn a_server_socket_others_may_write_to_is_refused() {
    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    std::fs::create_dir_all(p.path().join(".lowtouch")).unwrap();
    let socket = p.path().join(".lowtouch/serve.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = p.lowtouch(&["status"]).output().expect_code(3);
    assert!(out.stderr.contains("mode 666"), "{}", out.stderr);
    // A plain file where the socket should be is no server either.
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&socket, "").unwrap();
    let out = p.lowtouch(&["status"]).output().expect_code(3);
    assert!(out.stderr.contains("not a socket"), "{}", out.stderr);
}

/// A project whose environment `sec` has the secret `token` (from `KNOB_TOKEN`) and a
/// variable `api_key` a run may `--set`.
fn project_with_a_secret() -> Project {
    let p = Project::empty();
    p.write(
        "environments/sec.yaml",
        "hosts:\n  localhost: { address: 127.0.0.1 }\n\
         variables:\n  api_key: none\n  load_rate: '1'\n\
         secrets:\n  token: { from_env: KNOB_TOKEN }\n",
    );
    p.write(
        "pipelines/sec.yaml",
        "environment: sec\nscenarios: [ok.scn]\n",
    );
    p.write("pipelines/ok.scn", "echo fine\n");
    p
}

const SECRET_VALUE: &str = "s3cr3t-value-4711";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_set_value_equal_to_a_secret_is_stored_masked() {
    let p = project_with_a_secret();
    p.lowtouch(&[
        "run",
        "sec",
        "--set",
        &format!("api_key={SECRET_VALUE}"),
        "--set",
        &format!("load_rate={SECRET_VALUE}"),
    ])
    .env("KNOB_TOKEN", SECRET_VALUE)
    .output()
    .expect_code(0);
    let runs = crate::harness::history(&p);
    let run = runs.first().expect("a stored run");
    let text = run.to_string();
    assert!(!text.contains(SECRET_VALUE), "stored unmasked: {text}");
    assert!(text.contains("<secret:token>"), "no placeholder: {text}");
    // Nor anywhere in the store's files.
    let leaked = files_containing(&p.path().join(".lowtouch/db"), SECRET_VALUE.as_bytes());
    assert!(leaked.is_empty(), "the secret is in {leaked:?}");
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

#[test]
fn the_store_is_readable_by_its_owner_only() {
    let p = project_with_a_secret();
    p.lowtouch(&["run", "sec"])
        .env("KNOB_TOKEN", SECRET_VALUE)
        .output()
        .expect_code(0);
    let state = p.path().join(".lowtouch");
    assert_eq!(mode(&state), 0o700, ".lowtouch");
    let db = state.join("db");
    assert_eq!(mode(&db), 0o700, ".lowtouch/db");
    let mut files = 0;
    let mut stack = vec![db];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(
                    mode(&path) & 0o077,
                    0,
                    "{} is open to others",
                    path.display()
                );
                files += 1;
            }
        }
    }
    assert!(files > 0, "no store files were looked at");
}
