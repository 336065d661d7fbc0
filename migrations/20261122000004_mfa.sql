-- MFA factors and challenges (owned by the mfa service).

CREATE TABLE IF NOT EXISTS mfa_factors (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    friendly_name text,
    factor_type factor_type NOT NULL,
    status factor_status NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    secret text,
    phone text,
    last_challenged_at timestamp with time zone,
    web_authn_credential jsonb,
    web_authn_aaguid uuid,
    last_webauthn_challenge_data jsonb,
    CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_factors_last_challenged_at_key UNIQUE (last_challenged_at),
    CONSTRAINT mfa_factors_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);
COMMENT ON TABLE mfa_factors IS 'auth: stores metadata about factors';
COMMENT ON COLUMN mfa_factors.last_webauthn_challenge_data IS 'Stores the latest WebAuthn challenge data including attestation/assertion for customer verification';
CREATE UNIQUE INDEX IF NOT EXISTS mfa_factors_user_friendly_name_unique ON mfa_factors USING btree (friendly_name, user_id) WHERE (TRIM(BOTH FROM friendly_name) <> ''::text);
CREATE UNIQUE INDEX IF NOT EXISTS unique_phone_factor_per_user ON mfa_factors USING btree (user_id, phone);
CREATE INDEX IF NOT EXISTS factor_id_created_at_idx ON mfa_factors USING btree (user_id, created_at);
CREATE INDEX IF NOT EXISTS mfa_factors_user_id_idx ON mfa_factors USING btree (user_id);

CREATE TABLE IF NOT EXISTS mfa_challenges (
    id uuid NOT NULL,
    factor_id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    verified_at timestamp with time zone,
    ip_address inet NOT NULL,
    otp_code text,
    web_authn_session_data jsonb,
    CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_challenges_auth_factor_id_fkey FOREIGN KEY (factor_id) REFERENCES mfa_factors(id) ON DELETE CASCADE
);
COMMENT ON TABLE mfa_challenges IS 'auth: stores metadata about challenge requests made';
CREATE INDEX IF NOT EXISTS mfa_challenge_created_at_idx ON mfa_challenges USING btree (created_at DESC);
