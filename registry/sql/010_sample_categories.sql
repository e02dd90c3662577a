-- Per-category results (issue #21): each sample keeps its record's `category` field.
-- NULL for samples without one, and for every sample recorded before this migration; a
-- sample's line in the samples digest holds the category only where it is not NULL, so
-- those runs verify as they did.
ALTER TABLE eval_samples ADD COLUMN category VARCHAR;
