//! Command collectors (`probes:`) and `#{var}` in rule patterns, with the daemon a run
//! starts on its own host: a command's output read like a log, attributed to a component.

use crate::harness::Project;

const ENV: &str = r##"hosts:
  localhost: { address: 127.0.0.1 }
variables:
  stats: stats.txt
  # A value with regex metacharacters: matched as it is, not as a pattern.
  role_word: "m.ster+"
components:
  store:
    start: [sleep, '32.3']
steady_state:
  components: [store]
daemons:
  d:
    host: localhost
    interval: 100ms
    probes:
      - component: store
        run: [cat, "#{project_dir}/#{stats}"]
        every: 100ms
        rules:
          - { pattern: 'connected_slaves:(?P<n>\d+)', metric: replicas }
          - { pattern: 'role:(?P<role>#{role_word})', event: role }
      - component: store
        run: [sh, -c, 'echo broken >&2; exit 3']
        every: 200ms
"##;

#[test]
fn a_probe_s_output_becomes_the_component_s_metrics_and_events() {
    let p = Project::empty();
    p.write("environments/local.yaml", ENV);
    // The value with metacharacters as it is, and a line its unescaped pattern would match.
    p.write(
        "stats.txt",
        "role:m.ster+\nrole:mster\nconnected_slaves:2\n",
    );
    p.write("probe.scn", "sleep 700ms\n");
    p.lowtouch(&["check"]).output().expect_code(0);
    p.lowtouch(&["run", "--scenario", "probe.scn"])
        .output()
        .expect_code(0);
    let out = p
        .lowtouch(&["history", "--run", "last", "--events", "--json"])
        .output()
        .expect_code(0);
    let events: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let of = |name: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["source"] == "store" && e["name"] == name)
            .map(|e| e["text"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let roles = of("role");
    assert!(!roles.is_empty(), "{}", out.stdout);
    assert!(roles.iter().all(|r| r == "m.ster+"), "{roles:?}");
    let failed = of("probe_failed");
    assert!(
        failed.iter().any(|f| f.contains("exited with 3: broken")),
        "{failed:?}"
    );
    let out = p
        .lowtouch(&[
            "history",
            "--run",
            "last",
            "--metrics",
            "replicas",
            "--json",
        ])
        .output()
        .expect_code(0);
    let samples: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    // Every 100 ms for 700 ms: several samples, each the store's, each 2.
    assert!(samples.len() >= 3, "{}", out.stdout);
    assert!(
        samples
            .iter()
            .all(|m| m["source"] == "store" && m["number"].as_f64() == Some(2.0)),
        "{}",
        out.stdout
    );
    p.assert_nothing_left_running();
}

#[test]
fn a_probe_of_no_component_or_a_rule_of_an_unset_variable_is_found_at_its_place() {
    let p = Project::empty();
    p.write(
        "environments/local.yaml",
        &ENV.replace(
            "- component: store\n        run: [sh",
            "- component: stor\n        run: [sh",
        )
        .replace("#{role_word}", "#{rol_word}"),
    );
    let out = p.lowtouch(&["check"]).output().expect_code(1);
    assert!(
        out.stderr.contains("unknown component `stor`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("local.yaml:23:20"), "{}", out.stderr);
    // A run refuses it as bad input.
    p.write("one.scn", "echo\n");
    p.lowtouch(&["run", "--scenario", "one.scn"])
        .output()
        .expect_code(2);
    assert!(
        out.stderr.contains("variable `rol_word` is not defined"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("local.yaml:"), "{}", out.stderr);
}
