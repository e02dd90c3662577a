"""The registry's domain objects: what it stores and what it answers with.

Each is a frozen pydantic model, defined once here and used by the library API, the CLI
(``--json`` prints ``model_dump(mode="json")``) and, later, the dashboard and exports.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Versioned(_Frozen):
    """A record that is stored or exported: it carries the version of its format, and a
    record of a newer format than this code reads is refused, not misread."""

    FORMAT_VERSION: ClassVar[int] = 1
    format_version: int = 1

    @field_validator("format_version")
    @classmethod
    def _readable(cls, value: int) -> int:
        if not 1 <= value <= cls.FORMAT_VERSION:
            raise ValueError(
                f"{cls.__name__} format {value} is newer than this LoRA Ledger reads (up to "
                f"{cls.FORMAT_VERSION}); upgrade loraledger to read it"
            )
        return value


class _AsRecorded(BaseModel):
    """A typed part of a stored record that dumps exactly the keys it was given (and any
    it does not know), so a record written before a field existed hashes as it did."""

    model_config = ConfigDict(frozen=True, extra="allow")

    @model_serializer(mode="wrap")
    def _as_recorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = self.model_fields_set | set(self.model_extra or {})
        return {k: v for k, v in data.items() if k in given}

    # Read as the mapping it was before it was typed (``run.code["commit"]``), for code
    # written against the first version of the library API.

    def __getitem__(self, key: str) -> Any:
        recorded = self.model_dump()
        if key not in recorded:
            raise KeyError(key)
        return recorded[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.model_dump().get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.model_dump() == dict(other)
        return super().__eq__(other)


class Decision(enum.StrEnum):
    """What a reviewer signs over a version for an environment."""

    APPROVE = "approve"
    REJECT = "reject"


class DeploymentAction(enum.StrEnum):
    """How an environment came to run a version -- or, ``retire``, stopped running one."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    RETIRE = "retire"


class SuiteKind(enum.StrEnum):
    """A suite measures capability (benchmark) or a rule the product must keep (policy)."""

    BENCHMARK = "benchmark"
    POLICY = "policy"


class Role(enum.StrEnum):
    """What an identity may do. Engineers register, reviewers approve, auditors read,
    admins manage identities (and may do what engineers do)."""

    ENGINEER = "engineer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    ADMIN = "admin"


class IdentityStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"  # rotated, retired, or its person offboarded: earlier signatures hold
    COMPROMISED = "compromised"  # signatures from a point of the chain on are void


class IdentityKey(_Frozen):
    """One key a person holds (laptop, dashboard host, CI), as the signed identity history
    says: enrolled at audit event ``added_seq``, ended (retired, rotated, its person
    revoked) at ``ended_seq``, void from ``void_from_seq`` on when it was compromised.

    A signature is judged by its place in the audit chain (the event that recorded it):
    valid when the key was enrolled before that place and neither ended nor compromised
    at it (docs/threat-model.md says what proves the place)."""

    key_fingerprint: str
    public_key_pem: str
    label: str
    added_seq: int
    added_by: str
    status: KeyStatus = KeyStatus.ACTIVE
    ended_seq: int | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    compromised_since: datetime | None = None
    void_from_seq: int | None = None
    voids_all: bool = Field(
        default=False,
        description="revoked by a release before key histories, when a revocation voided "
        "every signature of the key: it still does",
    )

    def problem_at(
        self, seq: int, *, checkpoint: bool = False, bootstrap: bool = False
    ) -> str | None:
        """Why a signature by this key at audit event ``seq`` is not valid (None: it is).
        ``bootstrap``: the root's own first checkpoint, signed in the change that enrols
        it. ``checkpoint``: a checkpoint, which a legacy revocation never voided."""
        short = self.key_fingerprint[:16]
        if self.voids_all and not checkpoint:
            return (
                f"key {short}… was revoked at audit event #{self.ended_seq} by a release that "
                f"voided every signature of a revoked key ({self.end_reason}); re-register "
                "what it signed with an active identity"
            )
        if self.void_from_seq is not None and seq >= self.void_from_seq:
            since = (
                f"{self.compromised_since:%Y-%m-%d %H:%M:%S} UTC" if self.compromised_since else "?"
            )
            return (
                f"key {short}… was compromised since {since} (audit event #{self.void_from_seq} "
                f"on; revoked at #{self.ended_seq} by {self.ended_by}: {self.end_reason}), and "
                f"this signature is at #{seq}"
            )
        enrolled = self.added_seq <= seq if bootstrap else self.added_seq < seq
        if not enrolled:
            return f"key {short}… was enrolled only at audit event #{self.added_seq}, after #{seq}"
        # a checkpoint at the event that ended the key is the ending change's own (a
        # rotation is signed by the key it retires, as TUF's old root signs the new)
        ended = self.ended_seq is not None and (
            seq > self.ended_seq if checkpoint else seq >= self.ended_seq
        )
        if ended:
            return (
                f"key {short}… was {self.status.value} at audit event #{self.ended_seq} "
                f"({self.end_reason}), before this signature at #{seq}"
            )
        return None


class Identity(_Frozen):
    """A person (or service) of the registry with a role and one or more EC keys.

    ``public_key_pem`` and ``key_fingerprint`` are the key it was created with; ``keys``
    every key it has held, from the signed identity history (empty only on an identity
    not read through that history)."""

    name: str
    role: Role
    public_key_pem: str
    key_fingerprint: str = Field(description="sha256 of the DER SubjectPublicKeyInfo, hex")
    status: IdentityStatus
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    keys: tuple[IdentityKey, ...] = ()

    def key(self, key_fingerprint: str) -> IdentityKey | None:
        return next((k for k in self.keys if k.key_fingerprint == key_fingerprint), None)

    @property
    def active_keys(self) -> tuple[IdentityKey, ...]:
        return tuple(k for k in self.keys if k.status is KeyStatus.ACTIVE)

    def key_problem(self, key_fingerprint: str | None, seq: int) -> str | None:
        """Why a signature of this identity with ``key_fingerprint`` at audit event ``seq``
        is not valid; None when it is."""
        key = self.key(key_fingerprint) if key_fingerprint else None
        if key is None:
            return f"the key {str(key_fingerprint)[:16]}… was never enrolled for {self.name!r}"
        return key.problem_at(seq)


class FileEntry(_Frozen):
    """One file of an adapter version, stored by its sha256."""

    path: str = Field(description="relative, '/'-separated")
    sha256: str
    size_bytes: int


class AdapterVersion(_Frozen):
    """An immutable, signed adapter version NAME@vN."""

    name: str
    version: int
    digest: str = Field(description="model-signing subject digest over all files")
    peft_type: str
    base_model_name: str | None
    file_count: int
    total_bytes: int
    source_path: str
    created_at: datetime
    created_by: str
    signature_id: str
    signer: str
    signer_key_fingerprint: str
    bundle_sha256: str
    files: tuple[FileEntry, ...] = ()
    adapter_config: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class VerificationReport(_Frozen):
    """What a successful verification established (a failure raises instead)."""

    ref: str
    digest: str
    signer: str
    signer_key_fingerprint: str
    files_verified: int
    bytes_verified: int
    seconds: float


class AuditEvent(_Frozen):
    """One link of the audit chain."""

    seq: int
    created_at: datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class Checkpoint(_Frozen):
    """A signed statement that the chain's head was event ``seq`` with ``head_hash``."""

    registry_id: str
    seq: int
    head_hash: str
    signer: str
    signature: str = Field(description="base64 ECDSA-SHA256 over Checkpoint.message()")
    created_at: datetime
    key_fingerprint: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="the signer's key (checkpoints since schema 14 name it; before, None)",
    )


class AuditReport(_Frozen):
    """The result of a successful ``audit verify``."""

    events: int
    head_seq: int
    head_hash: str
    checkpoints_verified: int
    seconds: float
    checkpoints_void: int | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="checkpoints signed by a key compromised at their place: not counted",
    )
    records_verified: dict[str, int] | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="rows checked against their signed records, by table",
    )


class PiiFinding(_Frozen):
    """How often one kind of PII was found, and on which lines; never the values."""

    count: int
    lines: tuple[int, ...]


class GitProvenance(_Frozen):
    """Where a file sits in git: repository, commit, path and whether it differs."""

    repository: str = Field(description="the work tree's top-level directory")
    remote: str | None = Field(default=None, description="URL of the 'origin' remote, if any")
    commit: str | None = Field(description="HEAD commit; None in a repository without commits")
    path: str = Field(description="the file's path relative to the work tree")
    modified: bool = Field(description="the file differs from its content at HEAD")
    untracked: bool = Field(description="the file is not tracked by git")


class DatasetAnalysis(_Frozen):
    """What validating a dataset file found; the input to ``Datasets.register``."""

    file_sha256: str
    size_bytes: int
    format: str = Field(description="chat | prompt-completion")
    record_lines: tuple[int, ...] = Field(description="line number of each record")
    record_hashes: tuple[str, ...] = Field(description="sha256 of each record's canonical JSON")
    duplicate_lines: tuple[int, ...] = Field(description="lines repeating an earlier record")
    pii: dict[str, PiiFinding]
    git: GitProvenance | None


class DatasetVersion(_Frozen):
    """An immutable dataset version NAME@vN."""

    name: str
    version: int
    file_sha256: str
    file_name: str
    size_bytes: int
    format: str
    record_count: int
    duplicate_count: int
    merkle_root: str
    license: str
    source: str
    pii: dict[str, PiiFinding]
    git: GitProvenance | None
    source_path: str
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class RecordProof(_Frozen):
    """A record's membership in a dataset version, with its RFC 9162 inclusion proof."""

    dataset: str
    record_sha256: str
    line: int
    index: int = Field(description="1-based leaf position in the Merkle tree")
    size: int
    merkle_root: str
    proof: dict[str, Any]


class BaseModelVersion(_Frozen):
    """A base model recorded by identity: its files' manifest and where it came from."""

    name: str
    version: int
    digest: str = Field(description="sha256 over the sorted per-file sha256 digests")
    kind: str = Field(description="embedded | local")
    location: str = Field(description="directory holding the files")
    architecture: str
    origin: dict[str, Any]
    file_count: int
    total_bytes: int
    created_at: datetime
    created_by: str
    files: tuple[FileEntry, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class DatasetUse(_Frozen):
    """A dataset version a training run read, pinned by content."""

    ref: str
    file_sha256: str
    merkle_root: str
    records: int


class LossPoint(_Frozen):
    step: int
    loss: float
    learning_rate: float
    tokens: int = Field(description="training tokens seen up to and including this step")


class Quantization(_AsRecorded):
    """How the base was quantized for training (bitsandbytes), or ``method: none``."""

    method: str = Field(description="nf4 | fp4 | none")
    double_quant: bool = False
    library: str | None = None
    load_in_4bit: bool | None = None


class CodeProvenance(_AsRecorded):
    """The trainer's own source tree: repository, commit and whether it had changes."""

    repository: str | None = None
    remote: str | None = None
    commit: str | None = None
    dirty: bool = False
    changes: list[str] = Field(default_factory=list)
    allow_dirty: bool | None = None
    note: str | None = None


class Hardware(_AsRecorded):
    """The machine a run trained on."""

    machine: str | None = None
    system: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    memory_gib: float | None = None
    gpu: str | None = None


class TrainingRun(_Versioned):
    """Everything a training run used and produced, stored with the adapter version.

    Versioned (``format_version``) so that old records stay readable.
    """

    id: str
    config: dict[str, Any] = Field(description="the training config as validated")
    config_sha256: str = Field(description="sha256 of the config file's bytes")
    base_ref: str
    base_digest: str
    datasets: tuple[DatasetUse, ...]
    quantization: Quantization = Field(description="method, double quant, storage")
    compute_dtype: str = Field(description="float32 | bfloat16 | float16, and why")
    compute_dtype_reason: str
    compute_dtype_measurements: dict[str, Any] | None = Field(
        default=None,
        description="the timings an automatic CPU decision was made on (per dtype, rounds, "
        "other processes' share of the CPU, cached or not); None when set or fixed",
    )
    device: str
    code: CodeProvenance = Field(description="repository, commit, dirty, allow_dirty")
    libraries: dict[str, str]
    hardware: Hardware
    seed: int
    loss_curve: tuple[LossPoint, ...]
    steps: int
    tokens_seen: int
    wall_seconds: float
    resumed_from_step: int | None = None
    records_without_assistant_tokens: int = Field(
        default=0, description="records left out: no assistant token within max_seq_length"
    )
    started_at: datetime
    finished_at: datetime
    actor: str


class EvalSubject(_Frozen):
    """What an evaluation ran: an adapter version on its base, or a bare base."""

    kind: str = Field(description="adapter | base")
    name: str
    version: int
    artifact_digest: str = Field(description="the signed adapter digest, or the base's digest")
    base_name: str
    base_version: int
    base_digest: str

    @property
    def ref(self) -> str:
        """The reference that names it on the command line."""
        prefix = "" if self.kind == "adapter" else "base:"
        return f"{prefix}{self.name}@v{self.version}"


class TaskMetric(_Frozen):
    task: str
    metric: str
    filter: str
    value: float
    stderr: float | None
    higher_is_better: bool
    sample_count: int


def _added_later(description: str) -> Any:
    """A field added to a hashed record after records were made without it: None for
    those, and left out of the JSON when None, so they hash as they did."""
    return Field(
        default=None,
        description=f"{description}; None in records made before it",
        exclude_if=lambda value: value is None,
    )


class EvalSample(_Frozen):
    """One scored sample: what the model saw, what it answered, its score and why."""

    task: str
    doc_id: int
    filter: str = Field(description="the lm-eval filter the answer went through")
    sample_key: str
    doc_hash: str
    prompt_hash: str
    input: str
    output: str
    target: str
    metrics: dict[str, float]
    passed: bool | None
    reason: str
    category: str | None = _added_later(
        "the sample's category (its record's `category` field), for per-category results"
    )


class EvalRun(_Versioned):
    """One suite run on one subject, bound to the artifact's digest and the suite's."""

    id: str
    subject: EvalSubject
    quantization: dict[str, Any]
    compute_dtype: str
    suite_name: str
    suite_kind: SuiteKind
    suite_digest: str
    suite_files: dict[str, str]
    task_config_hashes: dict[str, str]
    settings: dict[str, Any]
    seed: int
    lm_eval_version: str
    libraries: dict[str, str]
    status: str = Field(description="complete | failed | interrupted")
    error: str | None
    sample_count: int
    results_sha256: str | None
    started_at: datetime
    finished_at: datetime
    created_by: str
    metrics: tuple[TaskMetric, ...] = ()
    samples: tuple[EvalSample, ...] = ()


class TaskComparison(_Frozen):
    """The paired verdict for one metric of one task."""

    task: str
    metric: str
    test: str = Field(description="mcnemar-exact | paired-permutation")
    n: int
    old_mean: float
    new_mean: float
    effect: float = Field(description="new mean - old mean")
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str = Field(description="improvement | regression | no significant change")
    flipped: dict[str, list[str]] = Field(description="sample keys by direction of change")
    adjusted_p: float | None = _added_later(
        "p_value after Holm's correction over the comparison's task metrics, which the "
        "verdict reads (comparisons made before the correction read p_value)"
    )


class Comparison(_Frozen):
    id: str
    new_run: str
    old_run: str
    new_subject: str
    old_subject: str
    suite_name: str
    suite_digest: str
    alpha: float
    settings: dict[str, Any]
    verdict: str
    results: tuple[TaskComparison, ...]
    created_at: datetime
    created_by: str


class RuleResult(_Frozen):
    """One rule of a gate: what was measured, against what bound, on which evidence."""

    kind: str = Field(description="threshold | data | provenance")
    rule: str
    passed: bool
    measured: Any = None
    bound: Any = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    message: str
    source: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="where in the policy the rule came from: environments.E, or "
        "environments.E.adapters.PATTERN (format 2 on)",
    )


class GateCheck(_Versioned):
    """A version judged against one environment of a release policy. From format 2 each
    rule names where in the policy it came from (an environment's own rule, or its
    override for the adapter's name or a glob of names)."""

    FORMAT_VERSION: ClassVar[int] = 2

    id: str
    adapter: str
    artifact_digest: str
    environment: str
    policy_path: str
    policy_sha256: str
    passed: bool
    rules: tuple[RuleResult, ...]
    inputs_sha256: str = Field(
        description="sha256 over the policy hash and the evidence of every rule but approvals"
    )
    created_at: datetime
    created_by: str

    @property
    def evidence_passed(self) -> bool:
        """Every rule but the approvals holds: what a reviewer may approve."""
        return all(r.passed for r in self.rules if r.kind != "approvals")


class PolicyVersion(_Versioned):
    """One version of the registry's release policy: the file's text as an admin set it,
    signed by her over ``payload`` (the registry, the version, the text's sha256, the
    reason, the previous version and the audit head at the time)."""

    version: int
    sha256: str
    text: str
    reason: str
    created_at: datetime
    created_by: str
    payload: str
    key_fingerprint: str
    signature: str

    @property
    def ref(self) -> str:
        return f"policy v{self.version}"


class Approval(_Versioned):
    """A signed review decision over one version for one environment."""

    id: str
    adapter: str
    artifact_digest: str
    environment: str
    decision: Decision
    comment: str
    policy_sha256: str
    gate_check_id: str
    inputs_sha256: str
    payload: str = Field(description="the canonical JSON that was signed")
    signer: str
    key_fingerprint: str
    signature: str
    created_at: datetime


class Attestation(_Frozen):
    """A signed in-toto statement (DSSE envelope) stored with the evidence it attests."""

    id: str
    kind: str = Field(description="provenance | test-result | derivation")
    subject: str = Field(
        description="the adapter ref, the evaluation run's id, or a derivation's source "
        "(adapter:REF or base:REF)"
    )
    artifact_digest: str = Field(description="the adapter's (or evaluated base's) digest")
    predicate_type: str
    envelope: dict[str, Any] = Field(description="the DSSE envelope, as JSON")
    envelope_sha256: str
    signer: str
    key_fingerprint: str
    created_at: datetime


class Derivation(_Frozen):
    """A file made from a registered artifact by a digest-pinned tool (an adapter converted
    to GGUF for llama.cpp), as its signed statement says: the attestation (``id``) that
    records it, verified when it was read."""

    id: str = Field(description="the attestation's id")
    source: str = Field(description="adapter:NAME@vN or base:NAME@vN")
    source_digest: str = Field(description="the source artifact's digest when it was derived")
    name: str = Field(description="the derived file's name")
    digest: str = Field(description="sha256 of the derived file")
    size_bytes: int
    build_type: str
    parameters: dict[str, Any]
    tools: tuple[dict[str, Any], ...] = Field(description="resource descriptors of the tool")
    signer: str
    created_at: datetime


class Deployment(_Versioned):
    """One change of what an environment runs.

    An environment runs at most one version of each adapter name: one *track* per name.
    From format 3 a record changes one track (``track``, the adapter name): a promotion
    or rollback makes ``adapter`` what the track runs, a retirement takes the name out
    of the environment. Records of formats 1 and 2 (``track`` None) were made when an
    environment ran one adapter: each replaced whatever ran there (:func:`running_after`).

    From format 2 each is a signed statement: ``payload`` (canonical JSON of the fields
    below, the previous deployment of the environment it follows, and the audit head when
    it was made) signed by ``created_by``'s key. Format 1 records (made before) have no
    signature; the audit chain alone vouches for them.
    """

    FORMAT_VERSION: ClassVar[int] = 3

    id: str
    seq: int = Field(description="the record's place in its environment's history: 1, 2, ...")
    environment: str
    adapter: str = Field(description="NAME@vN: the version run (retire: the one taken out)")
    artifact_digest: str
    action: DeploymentAction
    reason: str
    gate_check_id: str | None
    approval_ids: tuple[str, ...]
    policy_sha256: str | None
    created_at: datetime
    created_by: str
    track: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="the adapter name whose track this changes; None: the whole environment "
        "(formats 1 and 2)",
    )
    payload: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="the JSON that was signed"
    )
    key_fingerprint: str | None = Field(default=None, exclude_if=lambda v: v is None)
    signature: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def name(self) -> str:
        """The adapter name (the track a record of format 3 changes)."""
        return self.adapter.rsplit("@v", 1)[0]


class RunningTrack(_Frozen):
    """One adapter an environment runs now, as ``loraledger status`` shows it."""

    environment: str
    name: str
    adapter: str = Field(description="NAME@vN")
    digest: str
    since: datetime
    by: str
    action: DeploymentAction
    deployment_id: str
    deployment_seq: int
    signature_problem: str | None = Field(
        description="why the deployment's key was not valid at its place (then it is not "
        "served); None when it was"
    )

    @classmethod
    def of(cls, deployment: Deployment, problem: str | None) -> RunningTrack:
        return cls(
            environment=deployment.environment, name=deployment.name,
            adapter=deployment.adapter, digest=deployment.artifact_digest,
            since=deployment.created_at, by=deployment.created_by, action=deployment.action,
            deployment_id=deployment.id, deployment_seq=deployment.seq,
            signature_problem=problem,
        )  # fmt: skip


def running_after(history: Iterable[Deployment]) -> dict[str, Deployment]:
    """What an environment runs after ``history`` (its records, oldest first): for each
    adapter name, the record that put its version there. A record of format 1 or 2
    replaced everything the environment ran; a retirement takes its name out."""
    running: dict[str, Deployment] = {}
    for deployment in history:
        if deployment.track is None:
            running = {deployment.name: deployment}
        elif deployment.action is DeploymentAction.RETIRE:
            running.pop(deployment.track, None)
        else:
            running[deployment.track] = deployment
    return dict(sorted(running.items()))


def track_head(history: Iterable[Deployment], name: str) -> int:
    """The place (``seq``) of the newest record in ``history`` that changed adapter
    ``name``'s track -- one of that track, or one of format 1 or 2, which changed every
    track; 0 when none did. A change of a track is appended only while this still holds."""
    return max((d.seq for d in history if d.track in (None, name)), default=0)
