-- The admin user list (GET /admin/users) at scale. GoTrue's indexes are left as they are; these are
-- the suite's own, and every statement is idempotent.

-- Pages newest (or oldest) first within an audience, and keyset steps from a cursor, are index-only
-- seeks here instead of a sort of the whole table.
CREATE INDEX IF NOT EXISTS suite_users_admin_list_idx ON users USING btree (instance_id, aud, created_at, id);

-- The audit log is read newest first (GET /admin/audit).
CREATE INDEX IF NOT EXISTS suite_audit_log_entries_created_at_idx ON audit_log_entries USING btree (instance_id, created_at);

-- `filter=` is a substring match (email LIKE, full_name ILIKE): trigram indexes serve it when the
-- pg_trgm extension can be had. Where it cannot (no privilege, not installed), the filter still
-- works, by scanning.
DO $$
DECLARE
    trgm_schema name;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NULL THEN
        -- Supabase keeps extensions in `extensions`; elsewhere `public`; never among GoTrue's tables
        -- unless there is nowhere else.
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'extensions') THEN
            CREATE EXTENSION pg_trgm SCHEMA extensions;
        ELSIF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
            CREATE EXTENSION pg_trgm SCHEMA public;
        ELSE
            CREATE EXTENSION pg_trgm;
        END IF;
        SELECT n.nspname INTO trgm_schema
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS suite_users_email_trgm_idx ON users USING gin (email %I.gin_trgm_ops)', trgm_schema);
    EXECUTE format('CREATE INDEX IF NOT EXISTS suite_users_full_name_trgm_idx ON users USING gin ((raw_user_meta_data ->> ''full_name'') %I.gin_trgm_ops)', trgm_schema);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm unavailable (%): GET /admin/users?filter= will scan', SQLERRM;
END $$;

-- X-Total-Count without counting a million rows: users per (instance, audience), kept exact by
-- triggers in the same transaction as each insert, delete or change of audience. Each change lands
-- on one of 16 shard rows picked at random, so concurrent sign-ups rarely wait on the same row.
-- The functions pin their search_path and run as their owner: whoever writes to users (GoTrue, a
-- dashboard, a SQL session with another search_path) keeps the count right and is never refused.
CREATE TABLE IF NOT EXISTS suite_user_counts (
    instance_id uuid NOT NULL,
    aud character varying(255) NOT NULL,
    shard smallint NOT NULL,
    users bigint NOT NULL DEFAULT 0,
    CONSTRAINT suite_user_counts_pkey PRIMARY KEY (instance_id, aud, shard)
);
COMMENT ON TABLE suite_user_counts IS 'auth suite: users per instance and audience (sharded counter for GET /admin/users X-Total-Count)';
ALTER TABLE suite_user_counts ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION suite_count_users(changed_instance uuid, changed_aud character varying, delta bigint)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    INSERT INTO suite_user_counts AS c (instance_id, aud, shard, users)
    SELECT changed_instance, changed_aud, floor(random() * 16)::smallint, delta
    WHERE changed_instance IS NOT NULL AND changed_aud IS NOT NULL AND delta <> 0
    ON CONFLICT (instance_id, aud, shard) DO UPDATE SET users = c.users + EXCLUDED.users;
$$;

CREATE OR REPLACE FUNCTION suite_users_inserted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM suite_count_users(instance_id, aud, count(*)) FROM inserted_users GROUP BY instance_id, aud;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION suite_users_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM suite_count_users(instance_id, aud, -count(*)) FROM deleted_users GROUP BY instance_id, aud;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION suite_user_moved() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM suite_count_users(OLD.instance_id, OLD.aud, -1);
    PERFORM suite_count_users(NEW.instance_id, NEW.aud, 1);
    RETURN NULL;
END $$;

-- Creating the triggers locks out writes to users until this migration commits, so the backfill
-- below counts exactly the rows the triggers will not see.
DROP TRIGGER IF EXISTS suite_users_inserted ON users;
CREATE TRIGGER suite_users_inserted AFTER INSERT ON users
    REFERENCING NEW TABLE AS inserted_users FOR EACH STATEMENT EXECUTE FUNCTION suite_users_inserted();
DROP TRIGGER IF EXISTS suite_users_deleted ON users;
CREATE TRIGGER suite_users_deleted AFTER DELETE ON users
    REFERENCING OLD TABLE AS deleted_users FOR EACH STATEMENT EXECUTE FUNCTION suite_users_deleted();
DROP TRIGGER IF EXISTS suite_user_moved ON users;
CREATE TRIGGER suite_user_moved AFTER UPDATE OF instance_id, aud ON users FOR EACH ROW
    WHEN (OLD.instance_id IS DISTINCT FROM NEW.instance_id OR OLD.aud IS DISTINCT FROM NEW.aud)
    EXECUTE FUNCTION suite_user_moved();

DELETE FROM suite_user_counts;
INSERT INTO suite_user_counts (instance_id, aud, shard, users)
SELECT instance_id, aud, 0, count(*) FROM users
WHERE instance_id IS NOT NULL AND aud IS NOT NULL GROUP BY instance_id, aud;
