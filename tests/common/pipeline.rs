//! Helpers for tests of the Tasks pipeline and the Reconciler: a project, a
//! task, the calls a runner and the webhooks make, and direct looks at the
//! database where the API has no window (lesson rows, row times).

use bosun::pb::tasks_client::TasksClient;
use bosun::pb::{self, AdvanceOutcome, CiStatusState, StageSessionOutcome, VerdictDecision};
use bosun::storage::sql::query;
use tonic::transport::Channel;

use super::TestServer;

pub const REPO: &str = "acme/shop";
pub const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The commit [`TestServer::walk_to`] makes task `id`'s head.
pub fn head_of(id: i64) -> String {
    format!("{id:0>40x}")
}

impl TestServer {
    pub fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    pub fn reconciler_client(&self) -> pb::reconciler_client::ReconcilerClient<Channel> {
        pb::reconciler_client::ReconcilerClient::new(self.channel.clone())
    }

    /// Registers project `id` on github.com/acme/shop (or `origin`).
    pub async fn project(&self, id: &str, change: impl FnOnce(&mut pb::Project)) -> pb::Project {
        let mut project = pb::Project {
            id: id.into(),
            origin_url: format!("https://github.com/{REPO}.git"),
            ..Default::default()
        };
        change(&mut project);
        self.sessions_client()
            .register_project(pb::RegisterProjectRequest {
                project: Some(project),
                ..Default::default()
            })
            .await
            .expect("register project")
            .into_inner()
    }

    /// Starts the task of tracker issue `issue` (work item `work_item`).
    pub async fn start_task(
        &self,
        project: &str,
        issue: &str,
        work_item: &str,
    ) -> pb::StartTaskResponse {
        self.tasks()
            .start_task(pb::StartTaskRequest {
                project_id: project.into(),
                tracker_issue_id: issue.into(),
                work_item_id: work_item.into(),
                title: format!("Work on {work_item}"),
                ..Default::default()
            })
            .await
            .expect("start task")
            .into_inner()
    }

    pub async fn task(&self, id: i64) -> pb::Task {
        self.tasks()
            .get_task(pb::GetTaskRequest { id })
            .await
            .expect("get task")
            .into_inner()
    }

    /// The stage session of task `id` reports COMPLETED.
    pub async fn finish_stage(&self, id: i64) -> pb::AdvanceResult {
        let task = self.task(id).await;
        self.tasks()
            .advance_task(pb::AdvanceTaskRequest {
                task_id: id,
                session_id: task.stage_session_id,
                outcome: StageSessionOutcome::Completed.into(),
                ..Default::default()
            })
            .await
            .expect("advance task")
            .into_inner()
    }

    /// A tracker verdict on task `id`.
    pub async fn verdict(&self, id: i64, decision: VerdictDecision) -> pb::RecordVerdictResponse {
        self.tasks()
            .record_verdict(pb::RecordVerdictRequest {
                task_ref: Some(pb::record_verdict_request::TaskRef::TaskId(id)),
                decision: decision.into(),
                ..Default::default()
            })
            .await
            .expect("record verdict")
            .into_inner()
    }

    /// One CI context's state on a commit of REPO.
    pub async fn ci(
        &self,
        sha: &str,
        branch: &str,
        context: &str,
        state: CiStatusState,
    ) -> pb::RecordCiStatusResponse {
        self.tasks()
            .record_ci_status(pb::RecordCiStatusRequest {
                repo: REPO.into(),
                sha: sha.into(),
                branch: branch.into(),
                context: context.into(),
                state: state.into(),
                ..Default::default()
            })
            .await
            .expect("record ci status")
            .into_inner()
    }

    pub async fn test_report(
        &self,
        id: i64,
        passed: bool,
        coverage: f64,
        summary: &str,
    ) -> pb::RecordTestReportResponse {
        self.tasks()
            .record_test_report(pb::RecordTestReportRequest {
                task_id: id,
                passed,
                coverage_percent: coverage,
                summary: summary.into(),
                ..Default::default()
            })
            .await
            .expect("record test report")
            .into_inner()
    }

    /// The task's pull request, reported for its stage session.
    pub async fn pull_request(&self, id: i64, state: pb::PullRequestState, head: &str) {
        let task = self.task(id).await;
        self.sessions_client()
            .report_pull_request(pb::ReportPullRequestRequest {
                session_id: task.stage_session_id.clone(),
                fetched: true,
                pull_request: Some(pb::PullRequest {
                    url: format!("https://github.com/{REPO}/pull/42"),
                    number: 42,
                    state: state.into(),
                    head_sha: head.into(),
                    branch: task.branch,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("report pull request");
    }

    /// Walks task `id` from analysis to `stage` along green gates.
    pub async fn walk_to(&self, id: i64, stage: pb::Stage) {
        loop {
            let task = self.task(id).await;
            if task.stage == stage as i32 {
                return;
            }
            let current = pb::Stage::try_from(task.stage).expect("stage");
            match current {
                pb::Stage::Analysis | pb::Stage::Review => {
                    self.verdict(id, VerdictDecision::Approved).await;
                }
                pb::Stage::Development => {
                    // The head comes from the pull request, CI reports on it.
                    self.pull_request(id, pb::PullRequestState::Open, &head_of(id))
                        .await;
                    self.ci(
                        &head_of(id),
                        &task.branch,
                        "ci/test",
                        CiStatusState::Success,
                    )
                    .await;
                }
                pb::Stage::Testing => {
                    self.test_report(id, true, 100.0, "").await;
                }
                pb::Stage::Deploy => {
                    self.pull_request(id, pb::PullRequestState::Merged, &head_of(id))
                        .await;
                }
                _ => panic!("cannot walk past {current:?}"),
            }
            let result = self.finish_stage(id).await;
            assert_eq!(
                result.outcome,
                AdvanceOutcome::Advanced as i32,
                "walking {current:?}: {result:?}"
            );
        }
    }

    /// Lesson rows of `lesson_type` as (task_id, stage, agent, repo, detail).
    pub async fn lesson_rows(
        &self,
        lesson_type: &str,
    ) -> Vec<(
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    )> {
        let mut conn = self.direct().await;
        query(
            "SELECT task_id, stage, agent, repo, detail FROM lessons WHERE lesson_type = $1 ORDER BY id",
        )
        .bind(lesson_type)
        .fetch_all(&mut conn.conn())
        .await
        .expect("lesson rows")
    }

    /// Makes task `id` look untouched for `age` (the reconciler's grace).
    pub async fn age_task(&self, id: i64, age: std::time::Duration) {
        let mut conn = self.direct().await;
        query("UPDATE tasks SET update_time = update_time - $1 WHERE id = $2")
            .bind(age.as_micros() as i64)
            .bind(id)
            .execute(&mut conn.conn())
            .await
            .expect("age task");
    }
}

impl TestServer {
    /// Makes every verdict of task `id` look recorded `age` earlier.
    pub async fn age_verdicts(&self, id: i64, age: std::time::Duration) {
        let mut conn = self.direct().await;
        query("UPDATE verdicts SET create_time = create_time - $1 WHERE task_id = $2")
            .bind(age.as_micros() as i64)
            .bind(id)
            .execute(&mut conn.conn())
            .await
            .expect("age verdicts");
    }

    /// Terminates session `id`, as a runner that lost it would.
    pub async fn kill_session(&self, id: &str) -> pb::Session {
        self.sessions_client()
            .kill_session(pb::KillSessionRequest {
                session_id: id.into(),
                ..Default::default()
            })
            .await
            .expect("kill session")
            .into_inner()
            .session
            .expect("session")
    }
}

// ---------------------------------------------------------------------------
// Reads where the tests look: tasks, facts, sessions, events.

/// Tasks of the server, oldest first.
pub async fn all_tasks(server: &TestServer) -> Vec<pb::Task> {
    let mut tasks = server
        .tasks()
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .expect("list tasks")
        .into_inner()
        .tasks;
    tasks.reverse();
    tasks
}

pub async fn facts(server: &TestServer, id: i64) -> pb::TaskFacts {
    server
        .tasks()
        .get_task_facts(pb::GetTaskFactsRequest { task_id: id })
        .await
        .expect("task facts")
        .into_inner()
}

pub async fn session(server: &TestServer, id: &str) -> pb::Session {
    server
        .sessions_client()
        .get_session(pb::GetSessionRequest {
            session_id: id.into(),
        })
        .await
        .expect("get session")
        .into_inner()
}

pub async fn head_seq(server: &TestServer) -> i64 {
    server
        .events()
        .get_head(pb::GetHeadRequest {})
        .await
        .expect("head")
        .into_inner()
        .head_seq
}

/// Events after `after_seq` whose type starts with `prefix`, of task
/// `task_id` when not 0.
pub async fn events(
    server: &TestServer,
    after_seq: i64,
    prefix: &str,
    task_id: i64,
) -> Vec<pb::Event> {
    let filter = pb::EventFilter {
        event_type_prefixes: if prefix.is_empty() {
            Vec::new()
        } else {
            vec![prefix.into()]
        },
        task_id,
        ..Default::default()
    };
    server.list_events(after_seq, filter).await
}
