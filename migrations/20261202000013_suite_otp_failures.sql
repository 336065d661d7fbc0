-- The suite's own table (not GoTrue's): wrong one-time codes per user, across replicas.
--
-- GoTrue lets a code be guessed until it expires (a 6-digit code at 175 guesses/s falls in about
-- 1.6 hours). The suite counts wrong codes presented for a user; once AUTH_OTP_MAX_FAILURES is
-- reached, every code pending for that user dies and a new one must be requested. The count
-- belongs to the codes pending when it was taken (codes_fingerprint): a newly sent code starts a
-- new count.
CREATE TABLE IF NOT EXISTS suite_otp_failures (
    user_id uuid NOT NULL,
    codes_fingerprint text NOT NULL,
    failures integer NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT suite_otp_failures_pkey PRIMARY KEY (user_id),
    CONSTRAINT suite_otp_failures_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);
COMMENT ON TABLE suite_otp_failures IS 'Auth suite: wrong one-time codes per user; past AUTH_OTP_MAX_FAILURES the pending codes die.';
ALTER TABLE suite_otp_failures ENABLE ROW LEVEL SECURITY;
