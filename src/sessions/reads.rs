//! The Sessions service's reads: one session, the session and reaction
//! listings, and the attention view (sessions that need a person, with the
//! reasons from [`super::attention`]).

use super::Reaction;
use super::attention::{AttentionReason, TaskHold, attention_reasons, is_for_a_person};
use super::error::SessionError;
use super::service::{SessionFilter, SessionsService};
use super::store::{self, ReactionQuery};
use super::view::{SessionView, load_facts, view_of, views};
use crate::pagination::{OrderedCursor, OrderedPageRequest, PageRequest, split_page};

/// One session that needs a person (ListAttention).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionItem {
    pub view: SessionView,
    /// Most urgent first; never empty.
    pub reasons: Vec<AttentionReason>,
    /// The session's open reactions for a person, newest first.
    pub reactions: Vec<Reaction>,
    /// The held task whose stage session this is.
    pub held_task: Option<HeldTask>,
}

/// A held task, as the attention view names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTask {
    pub id: i64,
    pub detail: String,
}

impl SessionsService {
    pub async fn get_session(&self, id: &str) -> Result<SessionView, SessionError> {
        let mut reader = self.db.read().await?;
        let mut conn = reader.conn();
        Ok(view_of(load_facts(&mut conn, id).await?))
    }

    /// Sessions in the filter's order; the cursor continues the listing. The
    /// display-status filter is applied after reading, scanning further
    /// batches until the page is full.
    pub async fn list_sessions(
        &self,
        filter: &SessionFilter,
        page: OrderedPageRequest,
    ) -> Result<(Vec<SessionView>, Option<OrderedCursor>), SessionError> {
        const BATCH: u32 = 500;
        let mut reader = self.db.read().await?;
        let mut conn = reader.conn();
        let mut found = Vec::new();
        let mut cursor = page.after;
        loop {
            let batch = store::list_sessions(&mut conn, &filter.query, cursor, BATCH).await?;
            let exhausted = batch.len() < BATCH as usize;
            // Viewed a page's worth at a time (one statement each), so a
            // page that fills early costs no views past it.
            let mut rows = batch.into_iter().peekable();
            while rows.peek().is_some() {
                let (cursors, sessions): (Vec<_>, Vec<_>) =
                    rows.by_ref().take(page.size as usize).unzip();
                for (row_cursor, view) in cursors.into_iter().zip(views(&mut conn, sessions).await?)
                {
                    cursor = Some(row_cursor);
                    if filter
                        .display_status
                        .is_none_or(|wanted| wanted == view.display_status)
                    {
                        found.push(view);
                        if found.len() == page.size as usize {
                            // More may follow unless this was the very last row.
                            let more = !exhausted
                                || store::list_sessions(&mut conn, &filter.query, cursor, 1)
                                    .await?
                                    .len()
                                    == 1;
                            return Ok((found, if more { cursor } else { None }));
                        }
                    }
                }
            }
            if exhausted {
                return Ok((found, None));
            }
        }
    }

    /// Reactions newest first; the id continues the listing.
    pub async fn list_reactions(
        &self,
        filter: &ReactionQuery,
        page: PageRequest,
    ) -> Result<(Vec<Reaction>, Option<i64>), SessionError> {
        let mut reader = self.db.read().await?;
        let reactions =
            store::list_reactions(&mut reader.conn(), filter, page.after, page.size + 1).await?;
        Ok(split_page(reactions, page.size, |r| r.id))
    }

    /// Every session that needs a person (of the project, when given): the
    /// most urgent first, then latest activity first.
    pub async fn list_attention(
        &self,
        project_id: Option<&str>,
    ) -> Result<Vec<AttentionItem>, SessionError> {
        let mut reader = self.db.read().await?;
        let mut conn = reader.conn();
        let candidates = store::attention_candidates(&mut conn, project_id).await?;
        let sessions = candidates.iter().map(|c| c.session.clone()).collect();
        let viewed = views(&mut conn, sessions).await?;
        let mut items = Vec::with_capacity(candidates.len());
        for (candidate, view) in candidates.into_iter().zip(viewed) {
            let hold = candidate.held_task.as_ref().map(|(_, reason, _)| {
                if reason == "merge_unverified" {
                    TaskHold::MergeUnverified
                } else {
                    TaskHold::Other
                }
            });
            let reasons = attention_reasons(view.display_status, &candidate.reactions, hold);
            if reasons.is_empty() {
                continue;
            }
            items.push(AttentionItem {
                view,
                reasons,
                reactions: candidate
                    .reactions
                    .into_iter()
                    .filter(is_for_a_person)
                    .collect(),
                held_task: candidate.held_task.map(|(id, _, detail)| HeldTask {
                    id,
                    detail: detail.unwrap_or_default(),
                }),
            });
        }
        items.sort_by(|a, b| {
            a.reasons.first().cmp(&b.reasons.first()).then_with(|| {
                b.view
                    .session
                    .last_activity_time()
                    .cmp(&a.view.session.last_activity_time())
            })
        });
        Ok(items)
    }
}
