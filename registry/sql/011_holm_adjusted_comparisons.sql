-- A comparison's verdict per task reads the p-value after Holm's correction over its
-- task metrics (issue #21): a suite of five tasks tested at 0.05 each would otherwise
-- flag a false regression about one time in four. NULL for comparisons made before,
-- whose verdicts read the raw p-value and whose records hash without it.
ALTER TABLE comparison_results ADD COLUMN adjusted_p DOUBLE;
