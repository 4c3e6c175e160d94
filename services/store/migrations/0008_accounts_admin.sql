-- 0008_accounts_admin: the box admins by name, for Admins. The XMPP door
-- lists them in the contact addresses its entity capabilities cover,
-- once for every login; without it that was a scan and a sort of the
-- whole accounts table each time (1,000 logins to a box of 1,000
-- accounts: a fifth of a second of CPU). Admins are few: the index is
-- a page.
CREATE INDEX accounts_admin ON accounts (name) WHERE admin;
