-- The suite's own table (not GoTrue's): the newest TOTP time step each factor accepted.
--
-- RFC 6238 §5.2: a code must be accepted only once. GoTrue accepts the same code again for as long
-- as it is valid (its window is ±1 step, so up to 90 seconds), so a code seen over a shoulder or
-- replayed from a log still works. The mfa service accepts a code only for a step newer than the
-- last one this factor accepted, in the statement that records it, so two replicas cannot both
-- accept it.
CREATE TABLE IF NOT EXISTS suite_totp_accepted_steps (
    factor_id uuid NOT NULL,
    step bigint NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT suite_totp_accepted_steps_pkey PRIMARY KEY (factor_id),
    CONSTRAINT suite_totp_accepted_steps_factor_id_fkey FOREIGN KEY (factor_id) REFERENCES mfa_factors(id) ON DELETE CASCADE
);
COMMENT ON TABLE suite_totp_accepted_steps IS 'Auth suite: the newest TOTP step each factor accepted; a code is accepted once.';
ALTER TABLE suite_totp_accepted_steps ENABLE ROW LEVEL SECURITY;
