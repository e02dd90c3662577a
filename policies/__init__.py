"""Release policy as code: gates, approvals, promotion (loraledger.policies). Built in issue #6."""
