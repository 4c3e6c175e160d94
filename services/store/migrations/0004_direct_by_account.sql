-- 0004_direct_by_account: an account's direct messages across all its
-- conversations (its XEP-0313 archive), found by sender and by recipient.
-- Partial like messages_conv: room messages are not in them.
CREATE INDEX messages_from_direct ON messages (from_account) WHERE conv IS NOT NULL;
CREATE INDEX messages_to_direct   ON messages (to_account)   WHERE conv IS NOT NULL;
