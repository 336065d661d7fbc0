-- Which notifier replica made the latest attempt at a message (its HOSTNAME plus a per-start id), so
-- an operator can see how replicas share the work and which one saw a failure.
ALTER TABLE notification_deliveries ADD COLUMN IF NOT EXISTS sent_by text;
