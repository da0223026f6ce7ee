//! SQL of the lessons journal. Rows are translated to domain values here;
//! a value the domain cannot read is [`StoreError::Malformed`].

use sqlx::FromRow;

use super::{
    Attribution, Lesson, LessonFilter, LessonPage, LessonSource, LessonStats, LessonStatus,
    NewLesson, TargetDomain,
};
use crate::pagination::PageRequest;
use crate::storage::StoreError;
use crate::storage::sql::{Builder, Conn, query, query_per_engine};
use crate::time::UnixMicros;

const COLUMNS: &str = "id, create_time, update_time, lesson_type, work_item_id, task_id, \
    session_id, stage, agent, repo, root_cause, suggestion, detail, status, related_task, \
    source, attribution, target_repo, target_domain";

#[derive(FromRow)]
struct LessonRow {
    id: i64,
    create_time: i64,
    update_time: Option<i64>,
    lesson_type: String,
    work_item_id: Option<String>,
    task_id: Option<i64>,
    session_id: Option<String>,
    stage: Option<String>,
    agent: Option<String>,
    repo: Option<String>,
    root_cause: Option<String>,
    suggestion: Option<String>,
    detail: Option<String>,
    status: String,
    related_task: Option<String>,
    source: String,
    attribution: Option<String>,
    target_repo: Option<String>,
    target_domain: Option<String>,
}

crate::direct_row!(LessonRow {
    id,
    create_time,
    update_time,
    lesson_type,
    work_item_id,
    task_id,
    session_id,
    stage,
    agent,
    repo,
    root_cause,
    suggestion,
    detail,
    status,
    related_task,
    source,
    attribution,
    target_repo,
    target_domain,
});

impl LessonRow {
    fn into_lesson(self) -> Result<Lesson, StoreError> {
        let malformed = |column: &str, value: &str| {
            StoreError::Malformed(format!("lesson {}: {column} {value:?}", self.id))
        };
        let status =
            LessonStatus::parse(&self.status).ok_or_else(|| malformed("status", &self.status))?;
        let source =
            LessonSource::parse(&self.source).ok_or_else(|| malformed("source", &self.source))?;
        let attribution = match &self.attribution {
            Some(value) => {
                Some(Attribution::parse(value).ok_or_else(|| malformed("attribution", value))?)
            }
            None => None,
        };
        let target_domain = match &self.target_domain {
            Some(value) => {
                Some(TargetDomain::parse(value).ok_or_else(|| malformed("target_domain", value))?)
            }
            None => None,
        };
        Ok(Lesson {
            id: self.id,
            create_time: UnixMicros(self.create_time),
            update_time: self.update_time.map(UnixMicros),
            lesson_type: self.lesson_type,
            work_item_id: self.work_item_id,
            task_id: self.task_id,
            session_id: self.session_id,
            stage: self.stage,
            agent: self.agent,
            repo: self.repo,
            root_cause: self.root_cause,
            suggestion: self.suggestion,
            detail: self.detail,
            status,
            related_task: self.related_task,
            source,
            attribution,
            target_repo: self.target_repo,
            target_domain,
        })
    }
}

/// The newest AUTO lesson equal to `new` (same work item, type, stage and
/// dedup subject; unset equals unset) created at or after `cutoff`.
pub async fn find_duplicate(
    conn: &mut Conn<'_>,
    new: &NewLesson,
    cutoff: UnixMicros,
) -> Result<Option<Lesson>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM lessons WHERE source = 'auto' AND lesson_type = $1 \
         AND work_item_id IS NOT DISTINCT FROM $2 AND stage IS NOT DISTINCT FROM $3 \
         AND dedup_subject IS NOT DISTINCT FROM $4 AND create_time >= $5 \
         ORDER BY id DESC LIMIT 1"
    );
    let row: Option<LessonRow> = query(&sql)
        .bind(&new.lesson_type)
        .bind(&new.work_item_id)
        .bind(&new.stage)
        .bind(&new.dedup_subject)
        .bind(cutoff.0)
        .fetch_optional(conn)
        .await?;
    row.map(LessonRow::into_lesson).transpose()
}

/// Inserts `new` and returns the stored lesson: what was bound, with the
/// id the database gave it (every column is bound but `update_time`, unset
/// on a new lesson).
pub async fn insert(
    conn: &mut Conn<'_>,
    new: &NewLesson,
    now: UnixMicros,
) -> Result<Lesson, StoreError> {
    const INSERT: &str = "INSERT INTO lessons (create_time, lesson_type, work_item_id, task_id, \
        session_id, stage, agent, repo, root_cause, suggestion, detail, status, related_task, \
        source, attribution, target_repo, target_domain, dedup_subject) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
    let returning_id = format!("{INSERT} RETURNING id");
    let id = query_per_engine(INSERT, &returning_id)
        .bind(now.0)
        .bind(&new.lesson_type)
        .bind(&new.work_item_id)
        .bind(new.task_id)
        .bind(&new.session_id)
        .bind(&new.stage)
        .bind(&new.agent)
        .bind(&new.repo)
        .bind(&new.root_cause)
        .bind(&new.suggestion)
        .bind(&new.detail)
        .bind(new.status.as_str())
        .bind(&new.related_task)
        .bind(new.source.as_str())
        .bind(new.attribution.map(Attribution::as_str))
        .bind(&new.target_repo)
        .bind(new.target_domain.map(TargetDomain::as_str))
        .bind(&new.dedup_subject)
        .insert_id(conn)
        .await?;
    Ok(Lesson {
        id,
        create_time: now,
        update_time: None,
        lesson_type: new.lesson_type.clone(),
        work_item_id: new.work_item_id.clone(),
        task_id: new.task_id,
        session_id: new.session_id.clone(),
        stage: new.stage.clone(),
        agent: new.agent.clone(),
        repo: new.repo.clone(),
        root_cause: new.root_cause.clone(),
        suggestion: new.suggestion.clone(),
        detail: new.detail.clone(),
        status: new.status,
        related_task: new.related_task.clone(),
        source: new.source,
        attribution: new.attribution,
        target_repo: new.target_repo.clone(),
        target_domain: new.target_domain,
    })
}

/// One lesson by id.
pub async fn get(conn: &mut Conn<'_>, id: i64) -> Result<Option<Lesson>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM lessons WHERE id = $1");
    let row: Option<LessonRow> = query(&sql).bind(id).fetch_optional(conn).await?;
    row.map(LessonRow::into_lesson).transpose()
}

/// Writes the mutable fields and update_time of `lesson`.
pub async fn save(conn: &mut Conn<'_>, lesson: &Lesson) -> Result<(), StoreError> {
    query(
        "UPDATE lessons SET status = $1, attribution = $2, target_repo = $3, target_domain = $4, \
         related_task = $5, root_cause = $6, suggestion = $7, update_time = $8 WHERE id = $9",
    )
    .bind(lesson.status.as_str())
    .bind(lesson.attribution.map(Attribution::as_str))
    .bind(&lesson.target_repo)
    .bind(lesson.target_domain.map(TargetDomain::as_str))
    .bind(&lesson.related_task)
    .bind(&lesson.root_cause)
    .bind(&lesson.suggestion)
    .bind(lesson.update_time.map(|t| t.0))
    .bind(lesson.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of lessons matching `filter`, newest first.
pub async fn list(
    conn: &mut Conn<'_>,
    filter: &LessonFilter,
    page: PageRequest,
) -> Result<LessonPage, StoreError> {
    let mut query = Builder::new(format!("SELECT {COLUMNS} FROM lessons WHERE 1 = 1"));
    if let Some(lesson_type) = &filter.lesson_type {
        query.push(" AND lesson_type = ").push_bind(lesson_type);
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(repo) = &filter.repo {
        query.push(" AND repo = ").push_bind(repo);
    }
    if let Some(work_item_id) = &filter.work_item_id {
        query.push(" AND work_item_id = ").push_bind(work_item_id);
    }
    if let Some(source) = filter.source {
        query.push(" AND source = ").push_bind(source.as_str());
    }
    if let Some(attribution) = filter.attribution {
        query
            .push(" AND attribution = ")
            .push_bind(attribution.as_str());
    }
    if let Some(target_domain) = filter.target_domain {
        query
            .push(" AND target_domain = ")
            .push_bind(target_domain.as_str());
    }
    if let Some(after) = page.after {
        query.push(" AND id < ").push_bind(after);
    }
    // One more than asked tells whether another page exists.
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(page.size) + 1);
    let rows: Vec<LessonRow> = query.build().fetch_all(conn).await?;
    let lessons = rows
        .into_iter()
        .map(LessonRow::into_lesson)
        .collect::<Result<Vec<_>, _>>()?;
    let (lessons, next_after) = crate::pagination::split_page(lessons, page.size, |l| l.id);
    Ok(LessonPage {
        lessons,
        next_after,
    })
}

/// Total and counts by type and by status.
pub async fn stats(conn: &mut Conn<'_>) -> Result<LessonStats, StoreError> {
    let by_type: Vec<(String, i64)> = query(
        "SELECT lesson_type, COUNT(*) AS n FROM lessons GROUP BY lesson_type ORDER BY n DESC, lesson_type",
    )
    .fetch_all(conn)
    .await?;
    let status_rows: Vec<(String, i64)> =
        query("SELECT status, COUNT(*) FROM lessons GROUP BY status")
            .fetch_all(conn)
            .await?;
    let mut by_status = status_rows
        .into_iter()
        .map(|(status, count)| {
            LessonStatus::parse(&status)
                .map(|status| (status, count))
                .ok_or_else(|| StoreError::Malformed(format!("lesson status {status:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    by_status.sort_by_key(|(status, _)| LessonStatus::ALL.iter().position(|s| s == status));
    let total = by_type.iter().map(|(_, count)| count).sum();
    Ok(LessonStats {
        total,
        by_type,
        by_status,
    })
}
