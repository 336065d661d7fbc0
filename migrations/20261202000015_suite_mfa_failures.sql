-- The suite's own table (not GoTrue's): wrong MFA codes per factor, across replicas.
--
-- GoTrue limits MFA verifications per IP only (15 a minute), so a 6-digit TOTP code can be guessed
-- from many addresses. The mfa service counts wrong codes per factor; at AUTH_MFA_MAX_FAILURES the
-- factor refuses verifications until locked_until (AUTH_MFA_LOCKOUT), and the count starts again.
-- A successful verification clears the row.
CREATE TABLE IF NOT EXISTS suite_mfa_failures (
    factor_id uuid NOT NULL,
    failures integer NOT NULL,
    locked_until timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT suite_mfa_failures_pkey PRIMARY KEY (factor_id),
    CONSTRAINT suite_mfa_failures_factor_id_fkey FOREIGN KEY (factor_id) REFERENCES mfa_factors(id) ON DELETE CASCADE
);
COMMENT ON TABLE suite_mfa_failures IS 'Auth suite: wrong MFA codes per factor; past AUTH_MFA_MAX_FAILURES the factor pauses for AUTH_MFA_LOCKOUT.';
ALTER TABLE suite_mfa_failures ENABLE ROW LEVEL SECURITY;
