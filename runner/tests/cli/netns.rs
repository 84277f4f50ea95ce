//! Three hosts on one machine: `management`, `matching` and `monitoring` as network
//! namespaces joined by veth pairs, addresses inside those namespaces only. `lowtouch
//! serve` (script manager, router, data processor) runs on the management host, a daemon
//! on each of the others; the failover scenario's commands go to the matching host's
//! daemon over the namespaces' network. Then the monitoring daemon's link is cut for
//! 10 s: it reconnects, and every event of that window arrives exactly once.
//!
//! Needs root (or CAP_NET_ADMIN) and iproute2's `ip`. A machine that cannot create
//! namespaces fails this test with a message saying so: it is never skipped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{LOWTOUCH, Project, log_of, stop, wait_until};

const SECRET: &str = "netns-secret-0123456789abcdef0123";

/// The namespaces and links of one test; removed when dropped.
struct Hosts {
    prefix: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    /// management ── 10.77.1.0/24 ── matching; management ── 10.77.2.0/24 ── monitoring.
    fn create() -> Hosts {
        let hosts = Hosts {
            prefix: format!("lt{}", std::process::id()),
        };
        let (m, a, b) = (hosts.ns("mgmt"), hosts.ns("match"), hosts.ns("mon"));
        let cannot = |e: String| -> ! {
            panic!(
                "this machine cannot create the test's network namespaces, so the three-host \
                 test cannot run (it needs root or CAP_NET_ADMIN and iproute2): {e}"
            )
        };
        for ns in [&m, &a, &b] {
            ip(&["netns", "add", ns]).unwrap_or_else(|e| cannot(e));
            ip(&["-n", ns, "link", "set", "lo", "up"]).unwrap_or_else(|e| cannot(e));
        }
        for (link, peer, net) in [("a", &a, "10.77.1"), ("b", &b, "10.77.2")] {
            let (near, far) = (hosts.dev(link, "m"), hosts.dev(link, "p"));
            let steps: [&[&str]; 6] = [
                &["link", "add", &near, "type", "veth", "peer", "name", &far],
                &["link", "set", &near, "netns", &m],
                &["link", "set", &far, "netns", peer],
                &[
                    "-n",
                    &m,
                    "addr",
                    "add",
                    &format!("{net}.1/24"),
                    "dev",
                    &near,
                ],
                &[
                    "-n",
                    peer,
                    "addr",
                    "add",
                    &format!("{net}.2/24"),
                    "dev",
                    &far,
                ],
                &["-n", &m, "link", "set", &near, "up"],
            ];
            for step in steps {
                ip(step).unwrap_or_else(|e| cannot(e));
            }
            ip(&["-n", peer, "link", "set", &far, "up"]).unwrap_or_else(|e| cannot(e));
        }
        hosts
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// A veth end's name (15 bytes at most).
    fn dev(&self, link: &str, end: &str) -> String {
        format!("{}{link}{end}", self.prefix)
    }

    /// `lowtouch -C PROJECT ARGS…` inside host `host`'s namespace.
    fn lowtouch(&self, host: &str, p: &Project, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), LOWTOUCH, "-C"])
            .arg(p.path())
            .args(args)
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env("LOWTOUCH_DAEMON_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in ["mgmt", "match", "mon"] {
            let _ = ip(&["netns", "del", &self.ns(host)]);
        }
    }
}

#[test]
fn three_hosts_run_the_failover_and_survive_a_cut_link() {
    let p = Project::demo();
    // The demo environment spread over three hosts: the engines on `matching`, a probe
    // whose log the `monitoring` daemon follows on `monitoring`.
    let env = p.read("environments/local.yaml");
    let env = env
        .replace(
            "hosts:\n  localhost:\n    address: 127.0.0.1\n",
            "hosts:\n  management: { address: 10.77.1.1 }\n  matching: { address: 10.77.1.2 }\n  monitoring: { address: 10.77.2.2 }\n",
        )
        .replace("    host: localhost\n", "    host: matching\n")
        .replace(
            "  MatchingEnginePrimary:\n",
            "  MatchingEnginePrimary:\n    host: matching\n",
        )
        .replace(
            "  MatchingEngineBackup:\n",
            "  MatchingEngineBackup:\n    host: matching\n",
        )
        .replace(
            "  LoadGenerator:\n",
            "  Probe:\n    host: monitoring\n    log: probe.log\n    start: [sleep, '3600']\n  LoadGenerator:\n    host: matching\n",
        )
        .replace(
            "\n    allow: [exec_smoke]\n",
            "\n    allow: [exec_smoke]\n  monitoring:\n    host: monitoring\n    collectors: [system, log]\n    logs:\n      - component: Probe\n        rules:\n          - { pattern: 'MARK (?P<m>\\w+)', event: mark }\n",
        );
    assert!(env.contains("Probe:") && env.contains("monitoring:\n    host: monitoring"));
    p.write("environments/local.yaml", &env);
    p.write(
        "pipelines/threehost.yaml",
        "environment: local\n\
         before_each: [start MatchingEnginePrimary, start MatchingEngineBackup]\n\
         after_each: [stop_load, stop MatchingEngineBackup, stop MatchingEnginePrimary]\n\
         scenarios: [demo/failover_events.scn]\n",
    );
    p.write(
        "pipelines/watch.yaml",
        "environment: local\nscenarios: [watch.scn]\n",
    );
    p.write("pipelines/watch.scn", "sleep 18s\n");
    p.lowtouch(&["check"]).output().expect_code(0);

    let hosts = Hosts::create();
    let mut serve = hosts
        .lowtouch(
            "mgmt",
            &p,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--router",
                "0.0.0.0:7471",
                "--poll-interval",
                "1h",
                "threehost",
            ],
        )
        .spawn()
        .expect("start serve in the management namespace");
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("router on 0.0.0.0:7471"))),
        "serve did not start its router"
    );
    std::thread::spawn(move || for _ in lines {});
    let serve_log = log_of(&mut serve);
    let mut daemons = Vec::new();
    for (host, name, server) in [
        ("match", "matching", "10.77.1.1:7471"),
        ("mon", "monitoring", "10.77.2.1:7471"),
    ] {
        let mut d = hosts
            .lowtouch(host, &p, &["daemon", "--server", server, "--name", name])
            .spawn()
            .expect("start a daemon in its namespace");
        let log = log_of(&mut d);
        daemons.push((d, log));
    }
    let connected = |name: &str| {
        let status = p.lowtouch(&["status"]).output().stdout;
        status.contains(&format!("daemon local/{name} from 10.77."))
    };
    assert!(
        wait_until(Duration::from_secs(20), || connected("matching")
            && connected("monitoring")),
        "daemons did not connect across the namespaces:\nserve:\n{}\nmatching:\n{}\nmonitoring:\n{}",
        serve_log.lock().unwrap(),
        daemons[0].1.lock().unwrap(),
        daemons[1].1.lock().unwrap()
    );

    // The failover, through the server: starts, kills and smoke orders happen on the
    // matching host, by its daemon; the events come back over the veth link.
    let run = p.lowtouch(&["run", "threehost", "-v"]).output();
    assert_eq!(
        run.code,
        0,
        "{}\n{}\nserve:\n{}",
        run.stdout,
        run.stderr,
        serve_log.lock().unwrap()
    );
    assert!(
        run.stderr.contains("(daemon matching on matching)"),
        "{}",
        run.stderr
    );
    let events = p
        .lowtouch(&["history", "--run", "last", "--events", "--json"])
        .output()
        .expect_code(0)
        .stdout;
    let events: Vec<serde_json::Value> = serde_json::from_str(&events).unwrap();
    assert!(
        events.iter().any(|e| e["daemon"] == "matching"
            && e["source"] == "MatchingEnginePrimary"
            && e["text"] == "CRASHED"),
        "{events:#?}"
    );

    // A run that only watches; 2 s into it the monitoring host's link goes down for 10 s
    // while its probe writes a line a second.
    let watch = p.lowtouch(&["run", "watch"]).spawn();
    std::thread::sleep(Duration::from_secs(2));
    let far = hosts.dev("b", "p");
    let mon = hosts.ns("mon");
    ip(&["-n", &mon, "link", "set", &far, "down"]).unwrap();
    let cut = Instant::now();
    let probe_log = p.path().join(".lowtouch/envs/local/probe.log");
    let mut probe = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&probe_log)
        .unwrap();
    for i in 0..10 {
        writeln!(probe, "MARK cut{i}").unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    // Seen dead on both ends by now (3 s without a heartbeat).
    let dropped = serve_log.lock().unwrap().clone();
    ip(&["-n", &mon, "link", "set", &far, "up"]).unwrap();
    assert!(cut.elapsed() >= Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(15), || connected("monitoring")),
        "the monitoring daemon did not reconnect:\n{}",
        daemons[1].1.lock().unwrap()
    );
    let watched = watch.wait_with_output().unwrap();
    assert!(
        watched.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&watched.stdout),
        String::from_utf8_lossy(&watched.stderr)
    );

    // What the daemon kept while away arrives once it is back: wait for all of it.
    let events = || -> Vec<serde_json::Value> {
        let out = p
            .lowtouch(&["history", "--run", "last", "--events", "--json"])
            .output()
            .expect_code(0)
            .stdout;
        serde_json::from_str(&out).unwrap()
    };
    let marks = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["daemon"] == "monitoring" && e["source"] == "Probe")
            .count()
    };
    wait_until(Duration::from_secs(15), || marks(&events()) >= 10);
    let events = events();
    for i in 0..10 {
        let seen = events
            .iter()
            .filter(|e| {
                e["daemon"] == "monitoring"
                    && e["source"] == "Probe"
                    && e["text"] == format!("cut{i}")
            })
            .count();
        assert_eq!(seen, 1, "cut{i} was stored {seen} times: {events:#?}");
    }
    assert!(
        dropped.contains("router: daemon local/monitoring: silent for"),
        "the router did not notice the cut link:\n{dropped}"
    );
    for (d, _) in daemons {
        stop(d);
    }
    stop(serve);
}
