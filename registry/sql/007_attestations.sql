-- Signed in-toto attestations (issue #6): an SLSA Provenance v1 statement per trained
-- adapter version, signed by the trainer at registration, and an in-toto Test Result
-- statement per complete evaluation run, signed by whoever ran it. Each is a DSSE
-- envelope that verifies with the signer's public key alone; `envelope_sha256` is also
-- in the audit event of the change that stored it.
CREATE TABLE attestations (
    id               VARCHAR PRIMARY KEY,   -- uuid
    kind             VARCHAR NOT NULL,      -- provenance | test-result
    subject          VARCHAR NOT NULL,      -- adapter ref (NAME@vN) or eval run id
    artifact_digest  VARCHAR NOT NULL,
    predicate_type   VARCHAR NOT NULL,
    envelope         VARCHAR NOT NULL,      -- DSSE envelope JSON
    envelope_sha256  VARCHAR NOT NULL,
    signer           VARCHAR NOT NULL,
    key_fingerprint  VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL
);
