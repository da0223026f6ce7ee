-- Webhook fidelity (repository identity, stale pull request reports).

-- When the forge last updated each session's pull request, as the newest
-- applied ReportPullRequest said (observed_time): a report older than it is
-- stale and writes nothing. Not part of the pull request's payload, so
-- recording it appends no event.
CREATE TABLE pull_request_observations (
    session_id    TEXT    PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    observed_time INTEGER NOT NULL
);

-- Repository identity is "owner/name" in lowercase (GitHub and Gitea compare
-- names without regard to case); rows stored before in another case are
-- brought to it. A row whose lowercase spelling already exists keeps its
-- spelling (history only: lookups use the lowercase one).
UPDATE OR IGNORE tasks SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE OR IGNORE ci_statuses SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE OR IGNORE deploy_freezes SET repo = lower(repo) WHERE repo <> lower(repo);
