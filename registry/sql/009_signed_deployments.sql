-- Signed deployment records (issue #17): each promotion and rollback is a statement signed
-- by its actor over `payload` (canonical JSON of the row's fields, the environment's
-- previous deployment -- its id and the sha256 of its payload -- and the audit head at the
-- time). Rows written before this migration keep NULLs: the audit chain vouches for them.
ALTER TABLE deployments ADD COLUMN payload VARCHAR;
ALTER TABLE deployments ADD COLUMN key_fingerprint VARCHAR;
ALTER TABLE deployments ADD COLUMN signature VARCHAR;
