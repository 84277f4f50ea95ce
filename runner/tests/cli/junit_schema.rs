//! A validator for the Jenkins xunit schema (`junit-10.xsd`), the one JUnit consumers
//! validate against: which elements may appear where, in which order, with which
//! attributes. Written from the schema's structure so the tests need no network.

use quick_xml::Reader;
use quick_xml::events::Event;

struct Rule {
    element: &'static str,
    required: &'static [&'static str],
    allowed: &'static [&'static str],
    /// Children in schema order; an element may repeat a child but not go back.
    children: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        element: "testsuites",
        required: &[],
        // No `skipped` here: junit-10.xsd declares it on `testsuite` only.
        allowed: &["name", "time", "tests", "failures", "disabled", "errors"],
        children: &["testsuite"],
    },
    Rule {
        element: "testsuite",
        required: &["name", "tests"],
        allowed: &[
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        ],
        children: &["properties", "testcase", "system-out", "system-err"],
    },
    Rule {
        element: "properties",
        required: &[],
        allowed: &[],
        children: &["property"],
    },
    Rule {
        element: "property",
        required: &["name", "value"],
        allowed: &["name", "value"],
        children: &[],
    },
    Rule {
        element: "testcase",
        required: &["name"],
        allowed: &[
            "name",
            "assertions",
            "time",
            "classname",
            "status",
            "class",
            "file",
            "line",
            "log",
            "group",
            "url",
        ],
        // The reruns of a retried scenario: not in junit-10.xsd but in Maven Surefire's
        // schema (surefire-test-report-3.0.xsd), which Jenkins and GitLab read too.
        children: &[
            "skipped",
            "error",
            "failure",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
            "system-out",
            "system-err",
        ],
    },
    Rule {
        element: "skipped",
        required: &[],
        allowed: &["message"],
        children: &[],
    },
    Rule {
        element: "error",
        required: &[],
        allowed: &["message", "type"],
        children: &[],
    },
    Rule {
        element: "failure",
        required: &[],
        allowed: &["message", "type"],
        children: &[],
    },
    Rule {
        element: "rerunFailure",
        required: &[],
        allowed: &["message", "type"],
        children: &["stackTrace", "system-out", "system-err"],
    },
    Rule {
        element: "rerunError",
        required: &[],
        allowed: &["message", "type"],
        children: &["stackTrace", "system-out", "system-err"],
    },
    Rule {
        element: "flakyFailure",
        required: &[],
        allowed: &["message", "type"],
        children: &["stackTrace", "system-out", "system-err"],
    },
    Rule {
        element: "flakyError",
        required: &[],
        allowed: &["message", "type"],
        children: &["stackTrace", "system-out", "system-err"],
    },
    Rule {
        element: "stackTrace",
        required: &[],
        allowed: &[],
        children: &[],
    },
    Rule {
        element: "system-out",
        required: &[],
        allowed: &[],
        children: &[],
    },
    Rule {
        element: "system-err",
        required: &[],
        allowed: &[],
        children: &[],
    },
];

/// Validates `xml`; returns every violation.
pub fn validate(xml: &str) -> Result<(), Vec<String>> {
    let mut reader = Reader::from_str(xml);
    let mut errors = Vec::new();
    // Stack of (element, index in its rule's children of the last child seen).
    let mut stack: Vec<(&'static Rule, usize)> = Vec::new();
    let mut root_seen = false;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!("not well-formed XML: {e}"));
                break;
            }
        };
        let (start, is_empty) = match &event {
            Event::Start(s) => (Some(s.clone()), false),
            Event::Empty(s) => (Some(s.clone()), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let Some(start) = start else { continue };
        let name = String::from_utf8_lossy(start.name().as_ref()).to_string();
        let Some(rule) = RULES.iter().find(|r| r.element == name) else {
            errors.push(format!("element <{name}> is not declared by junit-10.xsd"));
            if !is_empty {
                stack.push((&RULES[RULES.len() - 1], 0));
            }
            continue;
        };
        match stack.last_mut() {
            None => {
                if name != "testsuites" || root_seen {
                    errors.push(format!("root element must be <testsuites>, found <{name}>"));
                }
                root_seen = true;
            }
            Some((parent, last)) => match parent.children.iter().position(|c| *c == name) {
                None => errors.push(format!(
                    "<{name}> may not appear inside <{}>",
                    parent.element
                )),
                Some(i) if i < *last => errors.push(format!(
                    "<{name}> comes after <{}> inside <{}>: out of schema order",
                    parent.children[*last], parent.element
                )),
                Some(i) => *last = i,
            },
        }
        let attrs: Vec<String> = start
            .attributes()
            .flatten()
            .map(|a| String::from_utf8_lossy(a.key.as_ref()).to_string())
            .collect();
        for req in rule.required {
            if !attrs.iter().any(|a| a == req) {
                errors.push(format!("<{name}> lacks the required attribute `{req}`"));
            }
        }
        for a in &attrs {
            if !rule.allowed.contains(&a.as_str()) {
                errors.push(format!(
                    "<{name}> has attribute `{a}`, which junit-10.xsd does not declare"
                ));
            }
        }
        if !is_empty {
            stack.push((rule, 0));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[test]
fn the_validator_says_no() {
    let bad = r#"<testsuites><testsuite name="s" tests="1"><testcase name="a"><properties/></testcase></testsuite></testsuites>"#;
    let errs = validate(bad).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("<properties> may not appear inside <testcase>")),
        "{errs:?}"
    );
    let order = r#"<testsuites><testsuite name="s" tests="1"><testcase name="a"/><properties/></testsuite></testsuites>"#;
    assert!(validate(order).is_err());
    let missing = r#"<testsuites><testsuite tests="1"/></testsuites>"#;
    assert!(validate(missing).is_err());
    let good = r#"<testsuites tests="1"><testsuite name="s" tests="1"><properties><property name="a" value="b"/></properties><testcase name="a" classname="c"><failure message="m" type="t">x</failure><system-out>o</system-out></testcase></testsuite></testsuites>"#;
    assert_eq!(validate(good), Ok(()));
}

#[test]
fn a_failed_setup_is_counted_alike_in_the_summary_json_and_junit() {
    let p = crate::harness::Project::empty();
    p.lowtouch(&["init"]).output().expect_code(0);
    p.write(
        "pipelines/main.yaml",
        "environment: local\ndefault: true\nsetup: [\"assert 1 == 2 'setup fails'\"]\n\
         scenarios: [main/hello.scn, main/two.scn]\n",
    );
    p.write("pipelines/main/two.scn", "greet\n");
    let out = p
        .lowtouch(&["run", "--junit", "j.xml"])
        .output()
        .expect_code(1);
    assert!(
        out.stdout.contains("0 passed, 1 failed, 2 skipped"),
        "{}",
        out.stdout
    );
    let junit = p.read("j.xml");
    validate(&junit).unwrap_or_else(|e| panic!("{e:?}\n{junit}"));
    assert!(
        junit.contains(r#"tests="3" skipped="2" errors="0" failures="1""#),
        "{junit}"
    );
    let runs = p
        .lowtouch(&["history", "--runs", "--json"])
        .output()
        .expect_code(0);
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    let count = |k: &str| runs[0][k].as_u64();
    assert_eq!(
        (count("passed"), count("failed"), count("skipped")),
        (Some(0), Some(1), Some(2))
    );
}
