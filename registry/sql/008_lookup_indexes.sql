-- Indexes for the lookups a trace, a gate check and an evidence export make by key on the
-- largest tables (issue #6 benchmark: 1M evaluation samples, 100k audit events). DuckDB
-- uses an ART index for equality filters on its column; without one each lookup scans.
CREATE INDEX eval_samples_run ON eval_samples (run_id);
CREATE INDEX audit_events_subject ON audit_events (subject);
CREATE INDEX dataset_records_sha256 ON dataset_records (sha256);
