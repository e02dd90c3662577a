-- Base models by identity, and training runs linking adapters to their inputs (issue #3).
-- The `base_models` table of schema 1 was a placeholder that no version of LoRA Ledger
-- ever wrote, so it is replaced rather than altered.

DROP TABLE base_models;

-- A base model is recorded by identity: the per-file sha256 manifest of its weights and
-- its origin. The weights stay where they are (`location`) and are re-hashed against the
-- manifest before every use.
CREATE TABLE base_models (
    name         VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    digest       VARCHAR NOT NULL,      -- sha256 over the sorted per-file digests
    kind         VARCHAR NOT NULL,      -- embedded | local
    location     VARCHAR NOT NULL,      -- directory holding the files
    architecture VARCHAR NOT NULL,      -- config.json model_type, e.g. llama
    origin       VARCHAR NOT NULL,      -- JSON: source, source file digests, conversion steps
    file_count   INTEGER NOT NULL,
    total_bytes  BIGINT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE base_model_files (
    base_name  VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    path       VARCHAR NOT NULL,
    sha256     VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    PRIMARY KEY (base_name, version, path)
);

-- Where an adapter version came from, written in the same transaction as the version.
CREATE TABLE training_runs (
    id              VARCHAR PRIMARY KEY,   -- uuid
    adapter_name    VARCHAR NOT NULL,
    adapter_version INTEGER NOT NULL,
    record          VARCHAR NOT NULL,      -- the whole TrainingRun record (JSON, versioned)
    config_sha256   VARCHAR NOT NULL,
    base_name       VARCHAR NOT NULL,
    base_version    INTEGER NOT NULL,
    base_digest     VARCHAR NOT NULL,
    code_commit     VARCHAR,
    code_dirty      BOOLEAN NOT NULL,
    seed            BIGINT NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL
);

CREATE TABLE training_run_datasets (
    run_id       VARCHAR NOT NULL,
    dataset_name VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    file_sha256  VARCHAR NOT NULL,
    merkle_root  VARCHAR NOT NULL,
    PRIMARY KEY (run_id, dataset_name, version)
);

CREATE VIEW v_base_models AS
SELECT name || '@v' || CAST(version AS VARCHAR) AS ref, name, version, digest, kind,
       location, architecture, origin, file_count, total_bytes, created_at, created_by
FROM base_models;

CREATE VIEW v_adapter_lineage AS
SELECT r.adapter_name || '@v' || CAST(r.adapter_version AS VARCHAR) AS adapter,
       r.id AS training_run,
       r.base_name || '@v' || CAST(r.base_version AS VARCHAR) AS base, r.base_digest,
       d.dataset_name || '@v' || CAST(d.version AS VARCHAR) AS dataset, d.merkle_root,
       r.code_commit, r.code_dirty, r.seed, r.config_sha256, r.created_by, r.finished_at
FROM training_runs r LEFT JOIN training_run_datasets d ON d.run_id = r.id;
