//! JUnit XML for whole runs, for CI test reports: one `<testsuite>` per run, one
//! `<testcase>` per finding (or per step when it has none), every text redacted.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use staging_core::pipeline::{Finding, RunReport, StepReport, StepStatus};
use staging_core::{Error, Redactor, Result};

use crate::gate::{GateDecision, GateRequest};

/// A JUnit report being built: add runs (and a promotion's gate), then [`Junit::to_xml`].
#[derive(Debug, Clone)]
pub struct Junit {
    report: Report,
    redactor: Redactor,
}

impl Junit {
    /// An empty report named `name` (`staging`).
    pub fn new(name: &str) -> Self {
        Junit {
            report: Report::new(name.to_owned()),
            redactor: Redactor::global().clone(),
        }
    }

    /// Redact with `redactor` rather than the global one.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    fn r(&self, s: &str) -> String {
        self.redactor.redact(s).into_owned()
    }

    /// Add one run as a test suite named `<project> <environment> @ <commit>`.
    pub fn add_run(&mut self, run: &RunReport) -> &mut Self {
        let short = &run.commit[..run.commit.len().min(12)];
        let mut suite =
            TestSuite::new(self.r(&format!("{} {} @ {short}", run.project, run.environment)));
        suite.add_properties([
            Property::new("project", self.r(&run.project)),
            Property::new("environment", self.r(&run.environment)),
            Property::new("commit", self.r(&run.commit)),
            Property::new("spec_hash", run.spec_hash.clone()),
            Property::new("started_at", run.started_at.clone()),
            Property::new("finished_at", run.finished_at.clone()),
        ]);
        let total: u64 = run.steps.iter().map(|s| s.duration_ms).sum();
        suite.set_time(Duration::from_millis(total));
        stamp(&mut suite, &run.started_at);
        let classname = format!("staging.{}", run.environment);
        for step in &run.steps {
            suite.add_test_cases(self.cases(&classname, step));
        }
        self.report.add_test_suite(suite);
        self
    }

    fn cases(&self, classname: &str, step: &StepReport) -> Vec<TestCase> {
        let classname = format!("{classname}.{}", step.step);
        if step.findings.is_empty() {
            let status = match step.status {
                StepStatus::Passed => TestCaseStatus::success(),
                StepStatus::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(self.r(&step.summary));
                    s
                }
                StepStatus::Failed | StepStatus::Error => {
                    let kind = if step.status == StepStatus::Error {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut s = TestCaseStatus::non_success(kind);
                    s.set_message(self.r(&step.summary));
                    s.set_type(step.step.clone());
                    s
                }
            };
            let mut case = TestCase::new(step.step.clone(), status);
            case.set_classname(classname)
                .set_time(Duration::from_millis(step.duration_ms))
                .set_system_out(self.r(&step.summary));
            return vec![case];
        }
        step.findings
            .iter()
            .map(|f| {
                let status = if f.ok && !f.skipped {
                    TestCaseStatus::success()
                } else if f.skipped || step.status == StepStatus::Skipped {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(self.r(&f.message));
                    s
                } else {
                    // A finding that could not be checked at all is an error, one that
                    // was checked and did not hold a failure; the message says what was
                    // expected and observed, as `smoke --junit` does.
                    let kind = if f.errored {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut s = TestCaseStatus::non_success(kind);
                    s.set_message(self.r(&failure_message(f)));
                    s.set_type(step.step.clone());
                    let mut description = self.r(&f.message);
                    if let Some(e) = &f.expected {
                        description.push_str(&format!("\nexpected: {}", self.r(e)));
                    }
                    if let Some(o) = &f.observed {
                        description.push_str(&format!("\nobserved: {}", self.r(o)));
                    }
                    // The request and the start of the body, as `smoke --junit` has them.
                    for (k, v) in &f.details {
                        description.push_str(&format!("\n{}: {}", self.r(k), self.r(v)));
                    }
                    s.set_description(description);
                    s
                };
                let mut case = TestCase::new(self.r(&format!("{}: {}", step.step, f.name)), status);
                case.set_classname(classname.clone());
                // Every testcase has a time: a finding that was not timed on its own
                // (a variable checked, a skipped probe) took no measurable time of its own.
                case.set_time(Duration::from_millis(f.duration_ms.unwrap_or(0)));
                if f.ok {
                    case.set_system_out(self.r(&f.message));
                }
                case
            })
            .collect()
    }

    /// Add a promotion's gate as a test suite of one case: `gate: <source> -> <target>`.
    pub fn add_gate(&mut self, request: &GateRequest, decision: &GateDecision) -> &mut Self {
        let mut suite = TestSuite::new(self.r(&format!(
            "promote {} -> {} @ {}",
            request.source,
            request.target,
            &request.commit[..request.commit.len().min(12)]
        )));
        let status = match decision {
            GateDecision::Allowed { .. } => TestCaseStatus::success(),
            GateDecision::Refused { refusal } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(self.r(&refusal.to_string()));
                s.set_type(refusal.kind());
                s
            }
        };
        let mut case = TestCase::new(
            format!(
                "gate: evidence of {} for {}",
                request.source, request.commit
            ),
            status,
        );
        case.set_classname("staging.promote.gate")
            .set_time(Duration::ZERO);
        if let GateDecision::Allowed { evidence } = decision {
            case.set_system_out(format!("allowed by evidence {}", evidence.id));
        }
        suite.add_test_case(case);
        suite.set_time(Duration::ZERO);
        stamp(
            &mut suite,
            &humantime::format_rfc3339_millis(request.now).to_string(),
        );
        self.report.add_test_suite(suite);
        self
    }

    /// The XML, valid against the Jenkins xUnit `junit-10.xsd` (see
    /// [`staging_core::junit`]), every text redacted.
    pub fn to_xml(&self) -> Result<String> {
        let xml = self
            .report
            .to_string()
            .map_err(|e| Error::failed(format!("cannot write JUnit XML: {e}")))?;
        Ok(self
            .redactor
            .redact_forms(&staging_core::junit::junit10(&xml))
            .into_owned())
    }
}

/// `timestamp` and `hostname` on a suite, as `junit-10.xsd` has them (the schema allows
/// neither on `<testsuites>` nor on `<testcase>`).
fn stamp(suite: &mut TestSuite, timestamp: &str) {
    suite
        .extra
        .insert("timestamp".into(), timestamp.to_owned().into());
    suite
        .extra
        .insert("hostname".into(), staging_core::junit::hostname().into());
}

/// What a failed finding says in `<failure message>`: its message, then what was expected
/// and observed when it knows (`http probe failed: expected status 200; observed status 500`).
fn failure_message(f: &Finding) -> String {
    match (&f.expected, &f.observed) {
        (Some(e), Some(o)) => format!("{}: expected {e}; observed {o}", f.message),
        _ => f.message.clone(),
    }
}

/// The JUnit XML of one run.
pub fn junit_xml(run: &RunReport) -> Result<String> {
    let mut j = Junit::new("staging");
    j.add_run(run);
    j.to_xml()
}
