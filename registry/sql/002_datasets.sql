-- Dataset versions with content provenance (issue #3).
-- The `datasets` table of schema 1 was a placeholder that no version of LoRA Ledger ever
-- wrote, so it is replaced rather than altered.

DROP TABLE datasets;

CREATE TABLE datasets (
    name            VARCHAR NOT NULL,
    version         INTEGER NOT NULL,
    file_sha256     VARCHAR NOT NULL,   -- the JSONL file in the artifact store
    file_name       VARCHAR NOT NULL,   -- its name when registered
    size_bytes      BIGINT NOT NULL,
    format          VARCHAR NOT NULL,   -- chat | prompt-completion
    record_count    BIGINT NOT NULL,
    duplicate_count BIGINT NOT NULL,    -- records whose hash appeared on an earlier line
    merkle_root     VARCHAR NOT NULL,   -- RFC 9162 root over the record hashes, in file order
    license         VARCHAR NOT NULL,   -- SPDX expression
    source          VARCHAR NOT NULL,   -- where the data came from (free text)
    pii             VARCHAR NOT NULL,   -- JSON {kind: {count, lines}}; never the values
    git             VARCHAR,            -- JSON {repository, commit, path, modified, ...} or NULL
    source_path     VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);

-- One row per record: its hash (sha256 over canonical JSON) and line, for membership
-- proofs ("was this record in the training data?").
CREATE TABLE dataset_records (
    dataset_name VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    position     BIGINT NOT NULL,       -- 1-based leaf index in the Merkle tree
    line         BIGINT NOT NULL,       -- line number in the file
    sha256       VARCHAR NOT NULL,
    PRIMARY KEY (dataset_name, version, position)
);

CREATE VIEW v_datasets AS
SELECT name || '@v' || CAST(version AS VARCHAR) AS ref, name, version, format, record_count,
       duplicate_count, license, source, merkle_root, file_sha256, pii, git,
       created_at, created_by
FROM datasets;
