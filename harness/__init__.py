"""lm-evaluation-harness suites and paired statistics (loraledger.harness). Built in issue #4."""
