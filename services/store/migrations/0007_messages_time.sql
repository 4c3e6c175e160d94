-- 0006_messages_time: messages by time, for what bounds the whole history
-- by time rather than a room or a conversation: the web admin's "messages
-- today" (CountMessagesSince) and history retention (PruneHistory), which
-- read the whole table without it (and pruning held the write lock, and so
-- every sender's acknowledgement, meanwhile). Times grow with seq, so a new
-- message adds to the index's last page: one page more per group commit.
-- Messages without a time (none the core makes) are not in it.
CREATE INDEX messages_time ON messages (time) WHERE time IS NOT NULL;
