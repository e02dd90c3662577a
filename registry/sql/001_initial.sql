-- LoRA Ledger registry schema, version 1.
-- Every timestamp is UTC (TIMESTAMP without zone, microsecond precision).
-- Rows of adapter_versions, adapter_files, artifacts, signatures and audit_events are
-- written once and never updated by LoRA Ledger; tampering with them through raw SQL is
-- detected by `loraledger adapters verify` and `loraledger audit verify`.

CREATE TABLE registry_meta (
    key   VARCHAR PRIMARY KEY,          -- 'registry_id', 'created_at', 'created_with'
    value VARCHAR NOT NULL
);

CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,     -- forward-only, applied in order
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);

-- People and services that act on the registry. The private key never enters the
-- database; only the public half (PEM) and its fingerprint do.
CREATE TABLE identities (
    name            VARCHAR PRIMARY KEY,
    role            VARCHAR NOT NULL,   -- engineer | reviewer | auditor | admin
    public_key_pem  VARCHAR NOT NULL,   -- EC public key, SubjectPublicKeyInfo PEM
    key_fingerprint VARCHAR NOT NULL,   -- sha256 over the DER public key, hex
    status          VARCHAR NOT NULL,   -- active | revoked
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    revoked_at      TIMESTAMP,
    revoked_by      VARCHAR,
    revoke_reason   VARCHAR
);

-- Content-addressed files: objects/sha256/<first two hex>/<sha256>.
CREATE TABLE artifacts (
    sha256          VARCHAR PRIMARY KEY,
    size_bytes      BIGINT NOT NULL,
    first_stored_at TIMESTAMP NOT NULL
);

-- OpenSSF model-signing bundles (Sigstore bundle JSON, DSSE envelope, in-toto statement).
CREATE TABLE signatures (
    id             VARCHAR PRIMARY KEY, -- uuid
    format         VARCHAR NOT NULL,    -- 'https://model_signing/signature/v1.0'
    bundle_sha256  VARCHAR NOT NULL,    -- the bundle file in the artifact store
    signer         VARCHAR NOT NULL,    -- identities.name
    key_fingerprint VARCHAR NOT NULL,   -- the signer's key when it signed
    subject_digest VARCHAR NOT NULL,    -- sha256 over the sorted per-file digests
    created_at     TIMESTAMP NOT NULL
);

-- Base models and datasets; filled by the trainer (issue #3).
CREATE TABLE base_models (
    name            VARCHAR NOT NULL,
    version         INTEGER NOT NULL,
    manifest_digest VARCHAR NOT NULL,
    origin          VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE datasets (
    name         VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    file_sha256  VARCHAR NOT NULL,
    record_count BIGINT NOT NULL,
    license      VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE adapters (
    name       VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL
);

-- One immutable row per registered version: NAME@vVERSION.
CREATE TABLE adapter_versions (
    name            VARCHAR NOT NULL,
    version         INTEGER NOT NULL,
    digest          VARCHAR NOT NULL,   -- = signatures.subject_digest
    signature_id    VARCHAR NOT NULL,
    peft_type       VARCHAR NOT NULL,   -- from adapter_config.json
    base_model_name VARCHAR,            -- base_model_name_or_path from adapter_config.json
    adapter_config  VARCHAR NOT NULL,   -- adapter_config.json as registered (JSON text)
    file_count      INTEGER NOT NULL,
    total_bytes     BIGINT NOT NULL,
    source_path     VARCHAR NOT NULL,   -- where the files were registered from
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE adapter_files (
    adapter_name VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    path         VARCHAR NOT NULL,      -- relative, '/'-separated
    sha256       VARCHAR NOT NULL,      -- artifacts.sha256
    size_bytes   BIGINT NOT NULL,
    PRIMARY KEY (adapter_name, version, path)
);

-- The tamper-evident audit log: hash = sha256 over (seq, prev_hash, created_at, actor,
-- action, subject, payload); prev_hash links each event to the one before it.
CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY,      -- 1, 2, 3, ... without gaps
    created_at TIMESTAMP NOT NULL,
    actor      VARCHAR NOT NULL,
    action     VARCHAR NOT NULL,        -- e.g. 'adapter.register', 'identity.revoke'
    subject    VARCHAR NOT NULL,        -- e.g. 'adapter:bank-support@v3', 'identity:eve'
    payload    VARCHAR NOT NULL,        -- canonical JSON text, hashed as stored
    prev_hash  VARCHAR NOT NULL,
    hash       VARCHAR NOT NULL
);

-- Signed statements "the chain's head was event SEQ with hash HEAD_HASH", written in
-- the same transaction as the events they cover and mirrored to
-- audit-checkpoints.jsonl beside the database.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    head_hash  VARCHAR NOT NULL,
    signer     VARCHAR NOT NULL,
    signature  VARCHAR NOT NULL,        -- base64 ECDSA-SHA256 over the checkpoint text
    created_at TIMESTAMP NOT NULL
);

-- Views for auditors (plain DuckDB: `duckdb .loraledger/registry.duckdb`).
CREATE VIEW v_adapter_versions AS
SELECT v.name || '@v' || CAST(v.version AS VARCHAR) AS ref,
       v.name, v.version, v.digest, v.peft_type, v.base_model_name,
       v.file_count, v.total_bytes, v.created_at, v.created_by,
       s.signer, s.key_fingerprint AS signer_key_fingerprint,
       i.status AS signer_status, i.revoke_reason AS signer_revoke_reason,
       s.bundle_sha256
FROM adapter_versions v
JOIN signatures s ON s.id = v.signature_id
LEFT JOIN identities i ON i.name = s.signer;

CREATE VIEW v_latest_adapter_versions AS
SELECT * FROM v_adapter_versions
QUALIFY row_number() OVER (PARTITION BY name ORDER BY version DESC) = 1;

CREATE VIEW v_adapter_files AS
SELECT f.adapter_name || '@v' || CAST(f.version AS VARCHAR) AS ref,
       f.path, f.sha256, f.size_bytes,
       'objects/sha256/' || substr(f.sha256, 1, 2) || '/' || f.sha256 AS store_path
FROM adapter_files f;

CREATE VIEW v_audit_log AS
SELECT seq, created_at, actor, action, subject, payload, hash
FROM audit_events ORDER BY seq;

CREATE VIEW v_identities AS
SELECT name, role, status, key_fingerprint, created_at, created_by,
       revoked_at, revoked_by, revoke_reason
FROM identities;
