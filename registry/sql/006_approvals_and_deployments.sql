-- Signed approval decisions and the deployment history of environments (issue #6).

-- A reviewer's decision over one version for one environment, signed with the reviewer's
-- key over `payload` (canonical JSON: adapter, digest, environment, decision, policy
-- sha256, gate check id, evidence hash, comment, signer, time). Anyone can verify it with
-- the signer's public key alone.
CREATE TABLE approvals (
    id              VARCHAR PRIMARY KEY,   -- uuid
    adapter_name    VARCHAR NOT NULL,
    adapter_version INTEGER NOT NULL,
    artifact_digest VARCHAR NOT NULL,
    environment     VARCHAR NOT NULL,
    decision        VARCHAR NOT NULL,      -- approve | reject
    comment         VARCHAR NOT NULL,
    policy_sha256   VARCHAR NOT NULL,
    gate_check_id   VARCHAR NOT NULL,
    inputs_sha256   VARCHAR NOT NULL,      -- the evidence the reviewer saw
    payload         VARCHAR NOT NULL,
    signer          VARCHAR NOT NULL,
    key_fingerprint VARCHAR NOT NULL,
    signature       VARCHAR NOT NULL,      -- base64 ECDSA P-256 / SHA-256 over payload
    created_at      TIMESTAMP NOT NULL
);

-- Every change of what an environment runs, newest last; the current deployment of an
-- environment is its newest row.
CREATE TABLE deployments (
    id              VARCHAR PRIMARY KEY,   -- uuid
    seq             BIGINT NOT NULL,       -- per environment: 1, 2, 3, ...
    environment     VARCHAR NOT NULL,
    adapter_name    VARCHAR NOT NULL,
    adapter_version INTEGER NOT NULL,
    artifact_digest VARCHAR NOT NULL,
    action          VARCHAR NOT NULL,      -- promote | rollback
    reason          VARCHAR NOT NULL,
    gate_check_id   VARCHAR,               -- promotions: the passing check
    approval_ids    VARCHAR NOT NULL,      -- JSON list: the approvals counted
    policy_sha256   VARCHAR,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    UNIQUE (environment, seq)
);
