-- Schema version 14: a checkpoint names the key that signed it (issue #36). A person holds
-- several keys over time; a checkpoint's signature is over the `loraledger-checkpoint/v2`
-- text, which carries this fingerprint, and verifies with that key, valid at its place in
-- the chain. Checkpoints written before (NULL here) are over the v1 text, which names the
-- person only, and verify with a key that person held valid there.
ALTER TABLE audit_checkpoints ADD COLUMN IF NOT EXISTS key_fingerprint VARCHAR;
