//! Judging a rollout from what `DescribeServices` and `DescribeTasks` show, as a pure
//! function over a snapshot, so that both real-ECS and moto-shaped answers are tested.
//!
//! A deploy is identified by the task-definition revision it rolls out. The judgement never
//! relies on `UpdateService` adding a deployment (moto does not): it reads the service's
//! task definition, its running and desired counts, the deployment for that revision and
//! its `rolloutState` when there is one, and the running tasks' revisions.

use staging_core::DeployStatus;

/// One entry of the service's `deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeploymentView {
    pub(crate) task_definition: String,
    /// `PRIMARY`, `ACTIVE`, `INACTIVE`.
    pub(crate) status: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`; absent without the circuit breaker.
    pub(crate) rollout_state: Option<String>,
    pub(crate) rollout_reason: Option<String>,
    pub(crate) running: i32,
    pub(crate) desired: i32,
}

/// One task of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskView {
    pub(crate) task_definition: String,
    /// `RUNNING`, `PENDING`, `STOPPED`...
    pub(crate) last_status: String,
}

/// What the judgement needs of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceView {
    pub(crate) task_definition: String,
    pub(crate) desired: i32,
    pub(crate) running: i32,
    pub(crate) deployments: Vec<DeploymentView>,
    /// The service's tasks that are not stopped.
    pub(crate) tasks: Vec<TaskView>,
}

/// The revision number at the end of a task-definition ARN (`...:task-definition/web:7`).
pub(crate) fn revision_of(task_definition: &str) -> Option<u32> {
    task_definition.rsplit(':').next()?.parse().ok()
}

/// `web:7` from a task-definition ARN, for messages.
pub(crate) fn short_name(task_definition: &str) -> &str {
    task_definition
        .rsplit('/')
        .next()
        .unwrap_or(task_definition)
}

/// The status of the deploy of `target` (a task-definition ARN) and the words for it.
pub(crate) fn judge(view: &ServiceView, target: &str) -> (DeployStatus, String) {
    let deployment = view
        .deployments
        .iter()
        .find(|d| d.task_definition == target);
    if let Some(d) = deployment
        && d.rollout_state.as_deref() == Some("FAILED")
    {
        let reason = d
            .rollout_reason
            .clone()
            .unwrap_or_else(|| "the deployment circuit breaker stopped it".into());
        return (DeployStatus::Failed, format!("FAILED: {reason}"));
    }
    if view.task_definition != target {
        let now = short_name(&view.task_definition);
        return match (revision_of(&view.task_definition), revision_of(target)) {
            (Some(current), Some(ours)) if current > ours => (
                DeployStatus::Superseded,
                format!("SUPERSEDED: the service now runs {now}"),
            ),
            _ => (
                DeployStatus::Failed,
                format!("ROLLED_BACK: the service runs {now} again"),
            ),
        };
    }
    let counts = |running: i32, desired: i32| format!("{running}/{desired} running");
    match deployment {
        Some(d) => match d.rollout_state.as_deref() {
            Some("COMPLETED") => {}
            Some(state) => {
                return (
                    DeployStatus::InProgress,
                    format!("{state} ({})", counts(d.running, d.desired)),
                );
            }
            None => {
                let others_left = view.deployments.iter().any(|o| o.task_definition != target);
                if d.running < d.desired || others_left {
                    return (
                        DeployStatus::InProgress,
                        format!("IN_PROGRESS ({})", counts(d.running, d.desired)),
                    );
                }
            }
        },
        None => {
            // No deployment for the revision the service is set to: moto, which does not add
            // one on UpdateService. Judge by the service's own counts.
            if view.running < view.desired {
                return (
                    DeployStatus::InProgress,
                    format!("IN_PROGRESS ({})", counts(view.running, view.desired)),
                );
            }
        }
    }
    // Tasks of another revision that ECS still wants running (starting or running) mean the
    // old deployment has not drained yet.
    let old = view
        .tasks
        .iter()
        .filter(|t| t.task_definition != target && t.last_status != "STOPPED")
        .count();
    if old > 0 {
        return (
            DeployStatus::InProgress,
            format!("DRAINING: {old} task(s) of an older revision still running"),
        );
    }
    let running = view
        .tasks
        .iter()
        .filter(|t| t.last_status == "RUNNING")
        .count() as i32;
    if !view.tasks.is_empty() && running < view.desired {
        return (
            DeployStatus::InProgress,
            format!(
                "IN_PROGRESS ({} of the new revision)",
                counts(running, view.desired)
            ),
        );
    }
    (
        DeployStatus::Live,
        format!("COMPLETED ({})", counts(view.running, view.desired)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REV1: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";
    const REV2: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2";
    const REV3: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3";

    fn dep(
        td: &str,
        status: &str,
        rollout: Option<&str>,
        running: i32,
        desired: i32,
    ) -> DeploymentView {
        DeploymentView {
            task_definition: td.into(),
            status: status.into(),
            rollout_state: rollout.map(Into::into),
            rollout_reason: rollout.map(|r| format!("reason for {r}")),
            running,
            desired,
        }
    }

    fn task(td: &str, status: &str) -> TaskView {
        TaskView {
            task_definition: td.into(),
            last_status: status.into(),
        }
    }

    fn service(
        td: &str,
        running: i32,
        deployments: Vec<DeploymentView>,
        tasks: Vec<TaskView>,
    ) -> ServiceView {
        ServiceView {
            task_definition: td.into(),
            desired: 2,
            running,
            deployments,
            tasks,
        }
    }

    #[test]
    fn rollouts_are_judged_from_what_the_service_shows() {
        use DeployStatus::*;
        let cases: Vec<(&str, ServiceView, &str, DeployStatus)> = vec![
            (
                "real ECS: new primary deployment in progress",
                service(
                    REV2,
                    2,
                    vec![
                        dep(REV2, "PRIMARY", Some("IN_PROGRESS"), 1, 2),
                        dep(REV1, "ACTIVE", Some("COMPLETED"), 2, 2),
                    ],
                    vec![],
                ),
                REV2,
                InProgress,
            ),
            (
                "real ECS: completed, tasks on the new revision",
                service(
                    REV2,
                    2,
                    vec![dep(REV2, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![task(REV2, "RUNNING"), task(REV2, "RUNNING")],
                ),
                REV2,
                Live,
            ),
            (
                "circuit breaker failed the rollout",
                service(
                    REV2,
                    2,
                    vec![
                        dep(REV2, "PRIMARY", Some("FAILED"), 0, 2),
                        dep(REV1, "ACTIVE", Some("COMPLETED"), 2, 2),
                    ],
                    vec![],
                ),
                REV2,
                Failed,
            ),
            (
                "circuit breaker rolled back and the failed deployment is gone",
                service(
                    REV1,
                    2,
                    vec![dep(REV1, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![],
                ),
                REV2,
                Failed,
            ),
            (
                "a newer deploy replaced ours",
                service(
                    REV3,
                    2,
                    vec![dep(REV3, "PRIMARY", Some("IN_PROGRESS"), 0, 2)],
                    vec![],
                ),
                REV2,
                Superseded,
            ),
            (
                "moto: no deployment for the new revision, counts reached",
                service(
                    REV2,
                    2,
                    vec![dep(REV1, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![],
                ),
                REV2,
                Live,
            ),
            (
                "moto: no deployment for the new revision, counts not reached",
                service(
                    REV2,
                    1,
                    vec![dep(REV1, "PRIMARY", Some("COMPLETED"), 1, 2)],
                    vec![],
                ),
                REV2,
                InProgress,
            ),
            (
                "completed but old tasks still running",
                service(
                    REV2,
                    2,
                    vec![dep(REV2, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![task(REV2, "RUNNING"), task(REV1, "RUNNING")],
                ),
                REV2,
                InProgress,
            ),
            (
                "completed but an old task is still starting",
                service(
                    REV2,
                    2,
                    vec![dep(REV2, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![
                        task(REV2, "RUNNING"),
                        task(REV2, "RUNNING"),
                        task(REV1, "PENDING"),
                    ],
                ),
                REV2,
                InProgress,
            ),
            (
                "new tasks still pending",
                service(
                    REV2,
                    2,
                    vec![dep(REV2, "PRIMARY", Some("COMPLETED"), 2, 2)],
                    vec![task(REV2, "RUNNING"), task(REV2, "PENDING")],
                ),
                REV2,
                InProgress,
            ),
            (
                "no circuit breaker: primary at its count, old deployment drained",
                service(REV2, 2, vec![dep(REV2, "PRIMARY", None, 2, 2)], vec![]),
                REV2,
                Live,
            ),
            (
                "no circuit breaker: old deployment still there",
                service(
                    REV2,
                    2,
                    vec![
                        dep(REV2, "PRIMARY", None, 2, 2),
                        dep(REV1, "ACTIVE", None, 1, 0),
                    ],
                    vec![],
                ),
                REV2,
                InProgress,
            ),
        ];
        for (what, view, target, want) in cases {
            let (got, words) = judge(&view, target);
            assert_eq!(got, want, "{what}: judged {got:?} ({words})");
        }
    }

    #[test]
    fn a_failed_rollout_carries_the_reason() {
        let view = service(
            REV2,
            0,
            vec![dep(REV2, "PRIMARY", Some("FAILED"), 0, 2)],
            vec![],
        );
        let (_, words) = judge(&view, REV2);
        assert_eq!(words, "FAILED: reason for FAILED");
    }

    #[test]
    fn revisions_are_read_from_arns() {
        assert_eq!(revision_of(REV3), Some(3));
        assert_eq!(short_name(REV3), "web:3");
        assert_eq!(revision_of("web"), None);
    }
}
