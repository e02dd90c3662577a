-- Schema version 13: the release policy in force is a record of the registry (issue #35,
-- #38). Each version is the policy file's text, set by an admin with a reason and signed
-- by her over `payload` (canonical JSON: the registry id, the version, the text's sha256,
-- the reason, the previous version and its sha256, and the audit head at the time); the
-- `policy.set` audit event records the same. Gate checks, approvals and promotions are
-- judged by the newest version; a file given instead is a dry run.
CREATE TABLE policy_versions (
    version         INTEGER PRIMARY KEY,  -- 1, 2, ... in the order they were set
    sha256          VARCHAR NOT NULL,     -- of the text's UTF-8 bytes, as gate checks record it
    text            VARCHAR NOT NULL,     -- the policy file as it was given
    reason          VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    payload         VARCHAR NOT NULL,
    key_fingerprint VARCHAR NOT NULL,
    signature       VARCHAR NOT NULL
);
