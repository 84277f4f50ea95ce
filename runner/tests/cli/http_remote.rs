//! Watching a repository over HTTP: git's own smart-HTTP server (`git http-backend`, run
//! as CGI by a small server here on loopback) in front of a bare repository, fetched by
//! lowtouch's http transport — the same code path an https:// remote takes, minus TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Project, commit, git, history};

/// Serves the bare repositories under `root` over smart HTTP until the test ends.
fn serve_git(root: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let _ = cgi(stream, &root);
            });
        }
    });
    port
}

/// One request, handed to `git http-backend` as CGI; its answer sent back.
fn cgi(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        body = dechunk(&mut reader)?;
    }
    let mut backend = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
        .env(
            "HTTP_CONTENT_ENCODING",
            header("content-encoding").unwrap_or_default(),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    backend.stdin.take().unwrap().write_all(&body)?;
    let out = backend.wait_with_output()?;
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        });
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&out.stdout[..i]).to_string(),
            &out.stdout[i + n..],
        ),
        None => (String::new(), &out.stdout[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response_headers = String::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => response_headers.push_str(&format!("{}\r\n", line.trim_end())),
            None => {}
        }
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(payload)?;
    stream.flush()
}

/// A chunked request body (git sends one when it is larger than its post buffer).
fn dechunk(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while {
                line.clear();
                reader.read_line(&mut line)? > 0 && !line.trim_end().is_empty()
            } {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(bad("a chunk does not end with CRLF"));
        }
    }
}

#[test]
fn a_repository_served_over_http_is_watched() {
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("exchange.git");
    git(root.path(), &["init", "-q", "--bare", "exchange.git"]);
    // git http-backend serves a repository only when it may be read by anyone.
    git(&bare, &["config", "http.receivepack", "false"]);
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q"]);
    commit(work.path(), "src/engine.txt", "v1\n");
    git(
        work.path(),
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    let port = serve_git(root.path().to_path_buf());

    let p = Project::empty();
    p.write("environments/local.yaml", "variables: {}\n");
    p.write(
        "pipelines/s.scn",
        "echo testing #{exchange.short} of #{exchange.ref}\n",
    );
    p.write(
        "pipelines/watched.yaml",
        &format!(
            "environment: local\nscenarios: [s.scn]\nrepositories:\n  exchange:\n    role: product\n    url: http://127.0.0.1:{port}/exchange.git\n    follow: [main]\n"
        ),
    );
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("watched/exchange: now watching 1 ref"),
        "{}",
        out.stderr
    );

    commit(work.path(), "src/engine.txt", "v2\n");
    git(
        work.path(),
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    let out = p.lowtouch(&["poll"]).output().expect_code(0);
    assert!(
        out.stderr.contains("refs/heads/main advanced"),
        "{}",
        out.stderr
    );
    let runs = history(&p);
    assert_eq!(runs.len(), 1);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    assert_eq!(runs[0]["candidate"]["exchange"], head.as_str());

    // A URL with credentials in it is refused before anything is fetched.
    p.write(
        "pipelines/watched.yaml",
        &format!(
            "environment: local\nscenarios: [s.scn]\nrepositories:\n  exchange:\n    role: product\n    url: http://me:hunter2@127.0.0.1:{port}/exchange.git\n    follow: [main]\n"
        ),
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("LOWTOUCH_GIT_TOKEN"), "{text}");
    // The finding quotes the line of the file it is in (the author's own text), but its
    // message, what logs keep, does not repeat the credential.
    let message = text
        .lines()
        .find(|l| l.contains("LOWTOUCH_GIT_TOKEN"))
        .unwrap();
    assert!(!message.contains("hunter2"), "{message}");
}
