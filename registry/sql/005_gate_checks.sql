-- Gate checks: a version judged against an environment's rules of a release policy
-- (issue #6). The whole report is kept, with the policy file's sha256 and a hash over
-- every input the rules read (evaluation runs, suite digests, datasets), so a decision is
-- never re-judged silently by a changed policy or new evidence.

CREATE TABLE gate_checks (
    id              VARCHAR PRIMARY KEY,   -- uuid
    adapter_name    VARCHAR NOT NULL,
    adapter_version INTEGER NOT NULL,
    artifact_digest VARCHAR NOT NULL,
    environment     VARCHAR NOT NULL,
    policy_path     VARCHAR NOT NULL,
    policy_sha256   VARCHAR NOT NULL,
    passed          BOOLEAN NOT NULL,
    report          VARCHAR NOT NULL,      -- JSON: every rule with measured value, bound, evidence
    inputs_sha256   VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL
);
