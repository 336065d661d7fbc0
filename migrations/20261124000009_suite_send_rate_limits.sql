-- The suite's own table (not GoTrue's): the project-wide email and SMS send budgets
-- (GOTRUE_RATE_LIMIT_EMAIL_SENT, GOTRUE_RATE_LIMIT_SMS_SENT). GoTrue keeps them in each process's
-- memory, so every replica had its own budget; one row per budget here holds across replicas.
CREATE TABLE IF NOT EXISTS send_rate_limits (
    name text NOT NULL,
    -- interval budgets ("N" per hour): the current window and how much of it is used
    window_start timestamp with time zone,
    used integer DEFAULT 0 NOT NULL,
    -- burst budgets ("N/duration"): a token bucket, as of updated_at
    tokens double precision DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT send_rate_limits_pkey PRIMARY KEY (name)
);
COMMENT ON TABLE send_rate_limits IS 'Auth suite: project-wide email/SMS send budgets shared by every replica.';
ALTER TABLE send_rate_limits ENABLE ROW LEVEL SECURITY;
