-- CHECK constraints that list three or more allowed values, written as
-- comparisons joined by OR instead of `column IN (...)`. The two forms accept
-- exactly the same values (NULL included: both give NULL, which a CHECK
-- lets through), but SQLite evaluates a constant IN list of more than two
-- values by building a temporary index for it on every INSERT or UPDATE
-- that checks the column: for a lesson, three such indexes were built,
-- filled and freed on each insert, a fifth of the writer's time.
--
-- Only the stored text of each CREATE TABLE changes; no row is rewritten
-- and every stored row already meets the new constraints, since they are
-- the old ones. This is SQLite's documented procedure for changing
-- constraints in place (https://sqlite.org/lang_altertable.html, "Making
-- Other Kinds Of Table Schema Changes"): edit sqlite_schema under
-- writable_schema, then bump the schema cookie, here by creating and
-- dropping a table, so that every other connection reloads the schema.
-- PostgreSQL evaluates IN lists without such a cost; its schema is unchanged.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
        'status IN (''new'', ''in_progress'', ''closed'', ''linked'')',
        'status = ''new'' OR status = ''in_progress'' OR status = ''closed'' OR status = ''linked'''),
        'attribution IN (''platform'', ''project'', ''both'', ''unknown'')',
        'attribution = ''platform'' OR attribution = ''project'' OR attribution = ''both'' OR attribution = ''unknown'''),
        'target_domain IN (''reliability'', ''quality'', ''economy'', ''features'', ''scale'')',
        'target_domain = ''reliability'' OR target_domain = ''quality'' OR target_domain = ''economy'' OR target_domain = ''features'' OR target_domain = ''scale''')
    WHERE type = 'table' AND name = 'lessons';

UPDATE sqlite_schema SET sql = replace(replace(replace(replace(sql,
        'role IN (''analyst'', ''developer'', ''reviewer'', ''tester'', ''deployer'')',
        'role = ''analyst'' OR role = ''developer'' OR role = ''reviewer'' OR role = ''tester'' OR role = ''deployer'''),
        'harness IN (''claude-code'', ''codex'', ''aider'', ''opencode'', ''other'')',
        'harness = ''claude-code'' OR harness = ''codex'' OR harness = ''aider'' OR harness = ''opencode'' OR harness = ''other'''),
        'state IN (''not_started'', ''working'', ''idle'', ''needs_input'',
                                                              ''stuck'', ''detecting'', ''done'', ''terminated'')',
        'state = ''not_started'' OR state = ''working'' OR state = ''idle'' OR state = ''needs_input'' OR state = ''stuck'' OR state = ''detecting'' OR state = ''done'' OR state = ''terminated'''),
        'termination_reason IN (''manually_killed'', ''runtime_lost'',
                                          ''agent_process_exited'', ''probe_failure'', ''error_in_process'',
                                          ''auto_cleanup'', ''pr_merged'')',
        'termination_reason = ''manually_killed'' OR termination_reason = ''runtime_lost'' OR termination_reason = ''agent_process_exited'' OR termination_reason = ''probe_failure'' OR termination_reason = ''error_in_process'' OR termination_reason = ''auto_cleanup'' OR termination_reason = ''pr_merged''')
    WHERE type = 'table' AND name = 'sessions';

UPDATE sqlite_schema SET sql = replace(replace(replace(replace(sql,
        'state IN (''open'', ''closed'', ''merged'')',
        'state = ''open'' OR state = ''closed'' OR state = ''merged'''),
        'review_decision IN (''review_required'', ''approved'', ''changes_requested'')',
        'review_decision = ''review_required'' OR review_decision = ''approved'' OR review_decision = ''changes_requested'''),
        'ci_state IN (''none'', ''pending'', ''passing'', ''failing'')',
        'ci_state = ''none'' OR ci_state = ''pending'' OR ci_state = ''passing'' OR ci_state = ''failing'''),
        'mergeability IN (''mergeable'', ''conflicting'', ''blocked'', ''unknown'')',
        'mergeability = ''mergeable'' OR mergeability = ''conflicting'' OR mergeability = ''blocked'' OR mergeability = ''unknown''')
    WHERE type = 'table' AND name = 'pull_requests';

UPDATE sqlite_schema SET sql = replace(sql,
        'status IN (''pending'', ''passed'', ''failed'', ''cancelled'', ''skipped'')',
        'status = ''pending'' OR status = ''passed'' OR status = ''failed'' OR status = ''cancelled'' OR status = ''skipped''')
    WHERE type = 'table' AND name = 'checks';

UPDATE sqlite_schema SET sql = replace(replace(sql,
        'priority IN (''urgent'', ''action'', ''info'')',
        'priority = ''urgent'' OR priority = ''action'' OR priority = ''info'''),
        'status IN (''pending'', ''escalated'', ''cleared'')',
        'status = ''pending'' OR status = ''escalated'' OR status = ''cleared''')
    WHERE type = 'table' AND name = 'reactions';

UPDATE sqlite_schema SET sql = replace(replace(sql,
        'stage IN (''analysis'', ''development'', ''review'', ''testing'',
                                                             ''deploy'', ''done'')',
        'stage = ''analysis'' OR stage = ''development'' OR stage = ''review'' OR stage = ''testing'' OR stage = ''deploy'' OR stage = ''done'''),
        'hold_reason IN (''rollback_limit'', ''retry_budget_exhausted'',
                                                          ''merge_unverified'', ''deploy_degraded'')',
        'hold_reason = ''rollback_limit'' OR hold_reason = ''retry_budget_exhausted'' OR hold_reason = ''merge_unverified'' OR hold_reason = ''deploy_degraded''')
    WHERE type = 'table' AND name = 'tasks';

UPDATE sqlite_schema SET sql = replace(sql,
        'state IN (''pending'', ''success'', ''failure'', ''error'')',
        'state = ''pending'' OR state = ''success'' OR state = ''failure'' OR state = ''error''')
    WHERE type = 'table' AND name = 'ci_statuses';

UPDATE sqlite_schema SET sql = replace(sql,
        'state IN (''running'', ''succeeded'', ''failed'')',
        'state = ''running'' OR state = ''succeeded'' OR state = ''failed''')
    WHERE type = 'table' AND name = 'reconciler_runs';

UPDATE sqlite_schema SET sql = replace(sql,
        'state IN (''running'', ''succeeded'', ''failed'')',
        'state = ''running'' OR state = ''succeeded'' OR state = ''failed''')
    WHERE type = 'table' AND name = 'processor_runs';

PRAGMA writable_schema = OFF;

CREATE TABLE bosun_schema_cookie (x);
DROP TABLE bosun_schema_cookie;
