-- Schema version 15: an environment runs many adapters, one track per adapter name
-- (issue #37). A deployment record of format 3 changes one track: `track` is the adapter
-- name, in the record's signed payload and its audit event; `action` may now be
-- `retire` (the name taken out of the environment). Rows written before keep NULL: each
-- of them replaced whatever its environment ran, and is read so.
ALTER TABLE deployments ADD COLUMN IF NOT EXISTS track VARCHAR;
CREATE INDEX IF NOT EXISTS deployments_by_name ON deployments (environment, adapter_name, seq);
