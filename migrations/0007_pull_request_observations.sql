-- When the forge last updated each session's pull request, as the newest
-- applied ReportPullRequest said (observed_time): a report older than it is
-- stale and writes nothing. Not part of the pull request's payload, so
-- recording it appends no event.
CREATE TABLE pull_request_observations (
    session_id    TEXT    PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    observed_time INTEGER NOT NULL
);
