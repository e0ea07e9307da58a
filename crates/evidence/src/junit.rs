//! JUnit XML for whole runs, for CI test reports: one `<testsuite>` per run, one
//! `<testcase>` per finding (or per step when it has none), every text redacted.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use staging_core::pipeline::{RunReport, StepReport, StepStatus};
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
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(self.r(&f.message));
                    s.set_type(step.step.clone());
                    let mut description = self.r(&f.message);
                    if let Some(e) = &f.expected {
                        description.push_str(&format!("\nexpected: {}", self.r(e)));
                    }
                    if let Some(o) = &f.observed {
                        description.push_str(&format!("\nobserved: {}", self.r(o)));
                    }
                    s.set_description(description);
                    s
                };
                let mut case = TestCase::new(self.r(&format!("{}: {}", step.step, f.name)), status);
                case.set_classname(classname.clone());
                if let Some(ms) = f.duration_ms {
                    case.set_time(Duration::from_millis(ms));
                }
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
        case.set_classname("staging.promote.gate");
        if let GateDecision::Allowed { evidence } = decision {
            case.set_system_out(format!("allowed by evidence {}", evidence.id));
        }
        suite.add_test_case(case);
        self.report.add_test_suite(suite);
        self
    }

    /// The XML.
    pub fn to_xml(&self) -> Result<String> {
        self.report
            .to_string()
            .map_err(|e| Error::failed(format!("cannot write JUnit XML: {e}")))
    }
}

/// The JUnit XML of one run.
pub fn junit_xml(run: &RunReport) -> Result<String> {
    let mut j = Junit::new("staging");
    j.add_run(run);
    j.to_xml()
}
