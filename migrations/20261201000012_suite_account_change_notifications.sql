-- Change notifications for the user service's account cache (GET /user served from memory).
--
-- Every change that can alter what GET /user answers (a user row, its identities or factors, a
-- session ending or changing its not_after or aal) sends `NOTIFY suite_accounts_changed` with the
-- affected user ids, comma-separated, or `*` when one statement touched more than 100 users. The
-- notification is delivered when the writer commits, whoever the writer is (a suite service,
-- GoTrue, a dashboard, plain SQL), so a replica's cache never outlives a committed change by more
-- than the delivery time. GoTrue's tables get only these suite_* triggers; nothing of theirs changes.
--
-- Not notified on purpose: inserting a user (no cache holds a user that did not exist) and a session
-- update that only moves refreshed_at (every refresh does; the cache's older refreshed_at only ever
-- makes a session look less fresh, and such a session is read again from the table).

-- Statement-level: one notification per statement, not per row; the transition table is always
-- named changed_rows and its user id column is named by the trigger's argument.
CREATE OR REPLACE FUNCTION suite_notify_accounts_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    changed_ids text;
BEGIN
    -- One query over at most 101 rows: past 100 the ids are not worth listing.
    IF TG_ARGV[0] = 'id' THEN
        SELECT CASE WHEN count(*) > 100 THEN '*' ELSE string_agg(DISTINCT id::text, ',') END
        INTO changed_ids FROM (SELECT id FROM changed_rows LIMIT 101) first_rows;
    ELSE
        SELECT CASE WHEN count(*) > 100 THEN '*' ELSE string_agg(DISTINCT user_id::text, ',') END
        INTO changed_ids FROM (SELECT user_id FROM changed_rows LIMIT 101) first_rows;
    END IF;
    -- NULL when the statement changed no row.
    IF changed_ids IS NOT NULL THEN
        PERFORM pg_notify('suite_accounts_changed', changed_ids);
    END IF;
    RETURN NULL;
END $$;

-- Row-level, for the one session update that matters (see above).
CREATE OR REPLACE FUNCTION suite_notify_session_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('suite_accounts_changed', OLD.user_id::text);
    IF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        PERFORM pg_notify('suite_accounts_changed', NEW.user_id::text);
    END IF;
    RETURN NULL;
END $$;

-- A transition table serves one event per trigger, hence a trigger per event.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT * FROM (VALUES
            ('users', 'id', 'UPDATE', 'OLD'),
            ('users', 'id', 'DELETE', 'OLD'),
            ('identities', 'user_id', 'INSERT', 'NEW'),
            ('identities', 'user_id', 'UPDATE', 'OLD'),
            ('identities', 'user_id', 'DELETE', 'OLD'),
            ('mfa_factors', 'user_id', 'INSERT', 'NEW'),
            ('mfa_factors', 'user_id', 'UPDATE', 'OLD'),
            ('mfa_factors', 'user_id', 'DELETE', 'OLD'),
            ('sessions', 'user_id', 'DELETE', 'OLD')
        ) AS t(table_name, id_column, event, transition)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I',
            'suite_' || target.table_name || '_' || lower(target.event) || '_notify', target.table_name);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s TABLE AS changed_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION suite_notify_accounts_changed(%L)',
            'suite_' || target.table_name || '_' || lower(target.event) || '_notify',
            target.event, target.table_name, target.transition, target.id_column);
    END LOOP;
END $$;

DROP TRIGGER IF EXISTS suite_sessions_update_notify ON sessions;
CREATE TRIGGER suite_sessions_update_notify AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (OLD.not_after IS DISTINCT FROM NEW.not_after OR OLD.aal IS DISTINCT FROM NEW.aal
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION suite_notify_session_changed();
