-- The suite's own table (not GoTrue's): MFA recovery codes (AUTH_MFA_RECOVERY_CODES_ENABLED).
--
-- A user with a verified factor may generate a set of one-time codes to reach AAL2 when the factor
-- is lost (GoTrue has none; supabase/auth#1342). Only the SHA-256 of each code is stored; a code
-- is spent by the statement that checks it (used_at), so it works once across replicas. A new set
-- replaces the old one; the rows go with the user.
CREATE TABLE IF NOT EXISTS suite_mfa_recovery_codes (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    code_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT suite_mfa_recovery_codes_pkey PRIMARY KEY (id),
    CONSTRAINT suite_mfa_recovery_codes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS suite_mfa_recovery_codes_user_code_idx ON suite_mfa_recovery_codes (user_id, code_hash);
COMMENT ON TABLE suite_mfa_recovery_codes IS 'Auth suite: hashed one-time MFA recovery codes (AUTH_MFA_RECOVERY_CODES_ENABLED).';
ALTER TABLE suite_mfa_recovery_codes ENABLE ROW LEVEL SECURITY;
