-- Tables GoTrue keeps for bookkeeping, row level security, and the grants Supabase expects.

CREATE TABLE IF NOT EXISTS instances (
    id uuid NOT NULL,
    uuid uuid,
    raw_base_config text,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    CONSTRAINT instances_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE instances IS 'Auth: Manages users across multiple sites.';

CREATE TABLE IF NOT EXISTS schema_migrations (
    version character varying(255) NOT NULL,
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (version)
);
COMMENT ON TABLE schema_migrations IS 'Auth: Manages updates to the auth system.';

-- Record GoTrue's migrations (up to v2.196.0) as applied: this schema is theirs, column for column, so
-- a GoTrue binary pointed at this database later finds nothing left to do.
INSERT INTO schema_migrations (version) VALUES
    ('00'),
    ('20210710035447'),
    ('20210722035447'),
    ('20210730183235'),
    ('20210909172000'),
    ('20210927181326'),
    ('20211122151130'),
    ('20211124214934'),
    ('20211202183645'),
    ('20220114185221'),
    ('20220114185340'),
    ('20220224000811'),
    ('20220323170000'),
    ('20220429102000'),
    ('20220531120530'),
    ('20220614074223'),
    ('20220811173540'),
    ('20221003041349'),
    ('20221003041400'),
    ('20221011041400'),
    ('20221020193600'),
    ('20221021073300'),
    ('20221021082433'),
    ('20221027105023'),
    ('20221114143122'),
    ('20221114143410'),
    ('20221125140132'),
    ('20221208132122'),
    ('20221215195500'),
    ('20221215195800'),
    ('20221215195900'),
    ('20230116124310'),
    ('20230116124412'),
    ('20230131181311'),
    ('20230322519590'),
    ('20230402418590'),
    ('20230411005111'),
    ('20230508135423'),
    ('20230523124323'),
    ('20230818113222'),
    ('20230914180801'),
    ('20231027141322'),
    ('20231114161723'),
    ('20231117164230'),
    ('20240115144230'),
    ('20240214120130'),
    ('20240306115329'),
    ('20240314092811'),
    ('20240427152123'),
    ('20240612123726'),
    ('20240729123726'),
    ('20240802193726'),
    ('20240806073726'),
    ('20241009103726'),
    ('20250717082212'),
    ('20250731150234'),
    ('20250804100000'),
    ('20250901200500'),
    ('20250903112500'),
    ('20250904133000'),
    ('20250925093508'),
    ('20251007112900'),
    ('20251104100000'),
    ('20251111201300'),
    ('20251201000000'),
    ('20260115000000'),
    ('20260121000000'),
    ('20260219120000'),
    ('20260302000000'),
    ('20260625000000')
ON CONFLICT (version) DO NOTHING;

-- RLS on, no policies: roles other than the owner see nothing unless a policy grants it.
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE saml_relay_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_amr_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE saml_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE flow_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE one_time_tokens ENABLE ROW LEVEL SECURITY;

-- On Supabase the migrations run as supabase_auth_admin and the role `postgres` may read (and pass on
-- read access to) the auth tables. Elsewhere there may be no such role: then there is nothing to grant.
DO $$
DECLARE
    t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres') THEN
        FOREACH t IN ARRAY ARRAY['schema_migrations', 'instances', 'users', 'audit_log_entries',
            'saml_relay_states', 'refresh_tokens', 'mfa_factors', 'sessions', 'sso_providers',
            'sso_domains', 'mfa_challenges', 'mfa_amr_claims', 'saml_providers', 'flow_state',
            'identities', 'one_time_tokens']
        LOOP
            EXECUTE format('GRANT SELECT ON %I TO postgres WITH GRANT OPTION', t);
        END LOOP;
    END IF;
END $$;
