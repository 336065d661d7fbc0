-- SSO providers and SAML (owned by the sso service) and PKCE/OAuth flow state (owned by the token service).

CREATE TABLE IF NOT EXISTS sso_providers (
    id uuid NOT NULL,
    resource_id text,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    disabled boolean,
    CONSTRAINT sso_providers_pkey PRIMARY KEY (id),
    CONSTRAINT "resource_id not empty" CHECK (resource_id = NULL::text OR char_length(resource_id) > 0)
);
COMMENT ON TABLE sso_providers IS 'Auth: Manages SSO identity provider information; see saml_providers for SAML.';
COMMENT ON COLUMN sso_providers.resource_id IS 'Auth: Uniquely identifies a SSO provider according to a user-chosen resource ID (case insensitive), useful in infrastructure as code.';
CREATE UNIQUE INDEX IF NOT EXISTS sso_providers_resource_id_idx ON sso_providers USING btree (lower(resource_id));
CREATE INDEX IF NOT EXISTS sso_providers_resource_id_pattern_idx ON sso_providers USING btree (resource_id text_pattern_ops);

CREATE TABLE IF NOT EXISTS sso_domains (
    id uuid NOT NULL,
    sso_provider_id uuid NOT NULL,
    domain text NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    CONSTRAINT sso_domains_pkey PRIMARY KEY (id),
    CONSTRAINT "domain not empty" CHECK (char_length(domain) > 0),
    CONSTRAINT sso_domains_sso_provider_id_fkey FOREIGN KEY (sso_provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE
);
COMMENT ON TABLE sso_domains IS 'Auth: Manages SSO email address domain mapping to an SSO Identity Provider.';
CREATE UNIQUE INDEX IF NOT EXISTS sso_domains_domain_idx ON sso_domains USING btree (lower(domain));
CREATE INDEX IF NOT EXISTS sso_domains_sso_provider_id_idx ON sso_domains USING btree (sso_provider_id);

CREATE TABLE IF NOT EXISTS saml_providers (
    id uuid NOT NULL,
    sso_provider_id uuid NOT NULL,
    entity_id text NOT NULL,
    metadata_xml text NOT NULL,
    metadata_url text,
    attribute_mapping jsonb,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    name_id_format text,
    CONSTRAINT saml_providers_pkey PRIMARY KEY (id),
    CONSTRAINT saml_providers_entity_id_key UNIQUE (entity_id),
    CONSTRAINT "entity_id not empty" CHECK (char_length(entity_id) > 0),
    CONSTRAINT "metadata_url not empty" CHECK (metadata_url = NULL::text OR char_length(metadata_url) > 0),
    CONSTRAINT "metadata_xml not empty" CHECK (char_length(metadata_xml) > 0),
    CONSTRAINT saml_providers_sso_provider_id_fkey FOREIGN KEY (sso_provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE
);
COMMENT ON TABLE saml_providers IS 'Auth: Manages SAML Identity Provider connections.';
CREATE INDEX IF NOT EXISTS saml_providers_sso_provider_id_idx ON saml_providers USING btree (sso_provider_id);

CREATE TABLE IF NOT EXISTS flow_state (
    id uuid NOT NULL,
    user_id uuid,
    auth_code text,
    code_challenge_method code_challenge_method,
    code_challenge text,
    provider_type text NOT NULL,
    provider_access_token text,
    provider_refresh_token text,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    authentication_method text NOT NULL,
    auth_code_issued_at timestamp with time zone,
    invite_token text,
    referrer text,
    oauth_client_state_id uuid,
    linking_target_id uuid,
    email_optional boolean DEFAULT false NOT NULL,
    CONSTRAINT flow_state_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE flow_state IS 'Stores metadata for all OAuth/SSO login flows';
CREATE INDEX IF NOT EXISTS idx_auth_code ON flow_state USING btree (auth_code);
CREATE INDEX IF NOT EXISTS idx_user_id_auth_method ON flow_state USING btree (user_id, authentication_method);
CREATE INDEX IF NOT EXISTS flow_state_created_at_idx ON flow_state USING btree (created_at DESC);

CREATE TABLE IF NOT EXISTS saml_relay_states (
    id uuid NOT NULL,
    sso_provider_id uuid NOT NULL,
    request_id text NOT NULL,
    for_email text,
    redirect_to text,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    flow_state_id uuid,
    CONSTRAINT saml_relay_states_pkey PRIMARY KEY (id),
    CONSTRAINT "request_id not empty" CHECK (char_length(request_id) > 0),
    CONSTRAINT saml_relay_states_sso_provider_id_fkey FOREIGN KEY (sso_provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE,
    CONSTRAINT saml_relay_states_flow_state_id_fkey FOREIGN KEY (flow_state_id) REFERENCES flow_state(id) ON DELETE CASCADE
);
COMMENT ON TABLE saml_relay_states IS 'Auth: Contains SAML Relay State information for each Service Provider initiated login.';
CREATE INDEX IF NOT EXISTS saml_relay_states_sso_provider_id_idx ON saml_relay_states USING btree (sso_provider_id);
CREATE INDEX IF NOT EXISTS saml_relay_states_for_email_idx ON saml_relay_states USING btree (for_email);
CREATE INDEX IF NOT EXISTS saml_relay_states_created_at_idx ON saml_relay_states USING btree (created_at DESC);

-- PKCE verifiers for providers that require PKCE when the suite is their OAuth client.
CREATE TABLE IF NOT EXISTS oauth_client_states (
    id uuid NOT NULL,
    provider_type text NOT NULL,
    code_verifier text,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT oauth_client_states_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE oauth_client_states IS 'Stores OAuth states for third-party provider authentication flows where Supabase acts as the OAuth client.';
CREATE INDEX IF NOT EXISTS idx_oauth_client_states_created_at ON oauth_client_states USING btree (created_at);
