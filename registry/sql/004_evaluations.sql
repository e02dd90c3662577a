-- Evaluation runs bound to the exact artifact evaluated, and paired comparisons between
-- them (issue #4). A run's rows are written in one transaction when it ends: a run that
-- failed or was interrupted is recorded with that status and no metrics or samples.

CREATE TABLE eval_runs (
    id                 VARCHAR PRIMARY KEY,   -- uuid
    subject_kind       VARCHAR NOT NULL,      -- adapter | base
    subject_name       VARCHAR NOT NULL,
    subject_version    INTEGER NOT NULL,
    artifact_digest    VARCHAR NOT NULL,      -- the adapter version's signed digest, or the base's
    base_name          VARCHAR NOT NULL,
    base_version       INTEGER NOT NULL,
    base_digest        VARCHAR NOT NULL,
    quantization       VARCHAR NOT NULL,      -- JSON: method, double_quant
    compute_dtype      VARCHAR NOT NULL,
    suite_name         VARCHAR NOT NULL,
    suite_kind         VARCHAR NOT NULL,      -- benchmark | policy
    suite_digest       VARCHAR NOT NULL,      -- digest over the suite folder's files
    suite_files        VARCHAR NOT NULL,      -- JSON: path -> sha256
    task_config_hashes VARCHAR NOT NULL,      -- JSON: task -> lm-eval's config hash
    settings           VARCHAR NOT NULL,      -- JSON: chat template, system instruction, limit, batch size
    seed               BIGINT NOT NULL,
    lm_eval_version    VARCHAR NOT NULL,
    libraries          VARCHAR NOT NULL,      -- JSON: name -> version
    status             VARCHAR NOT NULL,      -- complete | failed | interrupted
    error              VARCHAR,
    sample_count       INTEGER NOT NULL,
    results_sha256     VARCHAR,               -- over the canonical metrics and samples (complete runs)
    started_at         TIMESTAMP NOT NULL,
    finished_at        TIMESTAMP NOT NULL,
    created_by         VARCHAR NOT NULL
);

CREATE TABLE eval_metrics (
    run_id           VARCHAR NOT NULL,
    task             VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    filter           VARCHAR NOT NULL,
    value            DOUBLE NOT NULL,
    stderr           DOUBLE,
    higher_is_better BOOLEAN NOT NULL,
    sample_count     INTEGER NOT NULL,
    PRIMARY KEY (run_id, task, metric, filter)
);

CREATE TABLE eval_samples (
    run_id      VARCHAR NOT NULL,
    task        VARCHAR NOT NULL,
    doc_id      INTEGER NOT NULL,
    filter      VARCHAR NOT NULL,   -- the lm-eval filter the answer went through
    sample_key  VARCHAR NOT NULL,   -- the record's own id field, or its doc_hash
    doc_hash    VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    input       VARCHAR NOT NULL,   -- the prompt as the model saw it
    output      VARCHAR NOT NULL,   -- the filtered answer (JSON for log-likelihoods)
    target      VARCHAR NOT NULL,
    metrics     VARCHAR NOT NULL,   -- JSON: metric -> value
    passed      BOOLEAN,            -- for pass/fail scored samples
    reason      VARCHAR NOT NULL,
    PRIMARY KEY (run_id, task, filter, doc_id)
);

CREATE TABLE comparisons (
    id            VARCHAR PRIMARY KEY,   -- uuid
    new_run_id    VARCHAR NOT NULL,
    old_run_id    VARCHAR NOT NULL,
    suite_name    VARCHAR NOT NULL,
    suite_digest  VARCHAR NOT NULL,
    alpha         DOUBLE NOT NULL,
    settings      VARCHAR NOT NULL,     -- JSON: confidence, resamples, seed
    verdict       VARCHAR NOT NULL,     -- regression | improvement | no significant change (worst task)
    created_at    TIMESTAMP NOT NULL,
    created_by    VARCHAR NOT NULL
);

CREATE TABLE comparison_results (
    comparison_id VARCHAR NOT NULL,
    task          VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    test          VARCHAR NOT NULL,     -- mcnemar-exact | paired-permutation
    n             INTEGER NOT NULL,
    old_mean      DOUBLE NOT NULL,
    new_mean      DOUBLE NOT NULL,
    effect        DOUBLE NOT NULL,      -- new - old
    ci_low        DOUBLE NOT NULL,      -- paired bootstrap interval of the effect
    ci_high       DOUBLE NOT NULL,
    p_value       DOUBLE NOT NULL,
    verdict       VARCHAR NOT NULL,     -- improvement | regression | no significant change
    flipped       VARCHAR NOT NULL,     -- JSON: samples that changed, by direction
    PRIMARY KEY (comparison_id, task, metric)
);

CREATE VIEW v_eval_runs AS
SELECT r.id, r.subject_kind, r.subject_name || '@v' || r.subject_version AS subject,
       r.artifact_digest, r.base_name || '@v' || r.base_version AS base, r.suite_name,
       r.suite_digest, r.status, r.sample_count, r.finished_at, r.created_by
FROM eval_runs r;
