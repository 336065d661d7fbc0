-- The suite's own tables (not GoTrue's): the transactional outbox and the notifier's delivery log.

-- A service that must send an email or SMS inserts a row here in the same transaction as the token the
-- message carries. A relay publishes unpublished rows to JetStream with Nats-Msg-Id = id (the broker
-- drops duplicates) and sets published_at after the ack.
CREATE TABLE IF NOT EXISTS outbox_messages (
    id uuid NOT NULL,
    -- full NATS subject, prefix included: several suites may share one database and each relay
    -- publishes only its own prefix's rows
    subject text NOT NULL,
    -- protobuf-encoded auth.notification.v1 message
    payload bytea NOT NULL,
    -- NATS headers to publish with (e.g. W3C traceparent, so one sign-up is one trace)
    headers jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    published_at timestamp with time zone,
    publish_attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    CONSTRAINT outbox_messages_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_messages_subject_not_empty CHECK (char_length(subject) > 0)
);
COMMENT ON TABLE outbox_messages IS 'Auth suite: email/SMS requests waiting to be published to NATS JetStream.';
CREATE INDEX IF NOT EXISTS outbox_messages_unpublished_idx ON outbox_messages USING btree (subject, created_at) WHERE (published_at IS NULL);

-- The notifier records a message here before sending it, so a redelivered message is never sent twice.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    message_id uuid NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    status text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    CONSTRAINT notification_deliveries_pkey PRIMARY KEY (message_id),
    CONSTRAINT notification_deliveries_channel_check CHECK (channel = ANY (ARRAY['email'::text, 'sms'::text])),
    CONSTRAINT notification_deliveries_status_check CHECK (status = ANY (ARRAY['sending'::text, 'sent'::text, 'failed'::text, 'dead_lettered'::text]))
);
COMMENT ON TABLE notification_deliveries IS 'Auth suite: delivery log of the notification service (one row per message id).';
CREATE INDEX IF NOT EXISTS notification_deliveries_status_idx ON notification_deliveries USING btree (status, updated_at);

ALTER TABLE outbox_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_deliveries ENABLE ROW LEVEL SECURITY;
