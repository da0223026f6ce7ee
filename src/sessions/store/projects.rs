//! SQL of projects: insert, save, get and list, read through the
//! `projects_payload` view like every other sessions row.

use crate::sessions::Project;
use crate::storage::sql::{Builder, Conn, JsonText, query};
use crate::storage::{StoreError, decode_payload, decode_payloads, json_value};

pub async fn insert_project(conn: &mut Conn<'_>, project: &Project) -> Result<(), StoreError> {
    query(
        "INSERT INTO projects (id, repo_path, origin_url, display_name, register_time, coverage_threshold, \
         plane, required_ci_contexts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&project.id)
    .bind(&project.repo_path)
    .bind(&project.origin_url)
    .bind(&project.display_name)
    .bind(project.register_time.0)
    .bind(project.coverage_threshold)
    .bind(project.plane.as_ref().map(json_value).transpose()?)
    .bind(json_value(&project.required_ci_contexts)?)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_project(conn: &mut Conn<'_>, project: &Project) -> Result<(), StoreError> {
    query(
        "UPDATE projects SET repo_path = $1, origin_url = $2, display_name = $3, update_time = $4, archive_time = $5, \
         coverage_threshold = $6, plane = $7, required_ci_contexts = $8 WHERE id = $9",
    )
    .bind(&project.repo_path)
    .bind(&project.origin_url)
    .bind(&project.display_name)
    .bind(project.update_time.map(|t| t.0))
    .bind(project.archive_time.map(|t| t.0))
    .bind(project.coverage_threshold)
    .bind(project.plane.as_ref().map(json_value).transpose()?)
    .bind(json_value(&project.required_ci_contexts)?)
    .bind(&project.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_project(conn: &mut Conn<'_>, id: &str) -> Result<Option<Project>, StoreError> {
    let payload = query("SELECT payload FROM projects_payload WHERE id = $1")
        .bind(id)
        .fetch_optional_scalar(conn)
        .await?;
    decode_payload("project", payload)
}

/// Projects ordered by id, after `after` (an id), at most `limit`.
pub async fn list_projects(
    conn: &mut Conn<'_>,
    include_archived: bool,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Project>, StoreError> {
    let mut query = Builder::new(
        "SELECT p.payload FROM projects x JOIN projects_payload p ON p.id = x.id WHERE 1 = 1",
    );
    if !include_archived {
        query.push(" AND x.archive_time IS NULL");
    }
    if let Some(after) = after {
        query.push(" AND x.id > ").push_bind(after);
    }
    query
        .push(" ORDER BY x.id LIMIT ")
        .push_bind(i64::from(limit));
    let payloads: Vec<JsonText> = query.build().fetch_all_scalars(conn).await?;
    decode_payloads("project", &payloads)
}

/// Every project with an origin URL (to match a forge's "owner/name").
pub async fn projects_with_origin(conn: &mut Conn<'_>) -> Result<Vec<Project>, StoreError> {
    let payloads: Vec<JsonText> = query(
        "SELECT p.payload FROM projects x JOIN projects_payload p ON p.id = x.id WHERE x.origin_url IS NOT NULL",
    )
    .fetch_all_scalars(conn)
    .await?;
    decode_payloads("project", &payloads)
}
