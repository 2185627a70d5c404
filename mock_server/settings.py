"""Server settings: CLI flags and ``FAL_MOCK_*`` environment variables, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.faults import FaultPlan
from mock_server.engine.config import EngineConfig
from mock_server.engine.policies import Policy
from mock_server.engine.results import ENGINES, LipsyncOptions

if TYPE_CHECKING:
    from mock_server.webhooks import WebhookOptions

MiB = 1024 * 1024


class MockSettings(BaseSettings):
    """Everything ``fal-mock serve`` and ``create_app`` can be told. Env: ``FAL_MOCK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FAL_MOCK_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0: any free port).")
    seed: int = Field(0, description="Fixes request ids, timings, log lines and output bytes.")
    policy: str = Field(
        "realtime", description="How jobs progress: polls:N, virtual, realtime or immediate."
    )
    engine: str = Field("placeholder", description="What produces results.")
    runners: int = Field(2, ge=1, le=1024, description="Simulated runners (clock policies).")
    keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        description="Accepted credentials (comma-separated). Empty: any non-empty key works.",
    )
    allow_anonymous: bool = Field(False, description="Accept requests with no Authorization.")
    max_body_bytes: int = Field(64 * MiB, ge=1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(256 * MiB, ge=1024, description="Largest uploaded file.")
    journal_limit: int = Field(10_000, ge=1, description="Journal entries kept (oldest go).")
    finished_limit: int = Field(10_000, ge=1, description="Completed requests kept.")
    result_retention: float = Field(
        3600.0, gt=0, description="Seconds a completed request (and its files) is kept, as fal."
    )
    file_retention: float = Field(
        86_400.0, gt=0, description="Seconds an uploaded file (or a sync-run output) is kept."
    )
    state_dir: Path | None = Field(
        None, description="Keep requests, files and the journal here across restarts."
    )
    state_sync: Literal["full", "normal"] = Field(
        "full",
        description="State directory: 'full' fsyncs each submit, upload and completion before "
        "it is answered (survives a power cut); 'normal' does not (survives the process being "
        "killed at any instant, and costs less).",
    )
    stream_tick: float = Field(0.05, gt=0, le=5, description="SSE status check interval (s).")
    keepalive_interval: float = Field(15.0, gt=0, description="SSE keep-alive comment interval.")
    queue_delay: tuple[float, float] = Field((0.2, 0.6), description="Seconds before a runner.")
    inference_time: tuple[float, float] = Field((0.8, 2.0), description="Seconds of work.")
    allow_remote_inputs: bool = Field(
        False, description="Reference engine: fetch http(s) input URLs (off: offline only)."
    )
    input_root: Path | None = Field(
        None, description="Reference engine: directory file:// input URLs may point into."
    )
    allow_private_inputs: bool = Field(
        False,
        description="Remote inputs may be on private and loopback addresses (link-local and "
        "cloud metadata stay refused).",
    )
    allowed_input_hosts: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        description="Remote input hosts exempt from the address checks (comma-separated names, "
        "addresses or networks).",
    )
    max_input_bytes: int = Field(256 * MiB, ge=1024, description="Largest input media file.")
    max_input_seconds: float = Field(600.0, gt=0, description="Longest input media (seconds).")
    lipsync_backend: Literal["haar", "landmarks"] = Field(
        "haar", description="Reference engine's mouth tracker (landmarks: the optional extra)."
    )
    tls: bool = Field(False, description="Serve HTTPS with a local CA made on first use.")
    tls_dir: Path | None = Field(None, description="Where the CA and certificate are kept.")
    access_log: bool = Field(False, description="uvicorn's access log.")
    client_head_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request head (live server)."
    )
    client_body_timeout: float = Field(
        300.0, gt=0, description="Seconds a client has to send a whole request body."
    )
    client_write_timeout: float = Field(
        60.0, gt=0, description="Seconds an answer may wait for a client that stopped reading."
    )
    control_token: SecretStr | None = Field(
        None,
        description="Token the control plane (/_mock) requires; unset: loopback clients only.",
    )
    faults: Annotated[FaultPlan, NoDecode] = Field(
        default_factory=FaultPlan.none,
        description="Faults to inject: a FaultPlan as JSON, or @path to a JSON file.",
    )
    webhook_allow_hosts: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        description="Webhook targets allowed besides loopback and the inbox (comma-separated "
        "names, addresses, networks, or `public` for any public address).",
    )
    webhook_timeout: float = Field(
        15.0, gt=0, le=300, description="Seconds a webhook attempt may take (fal: 15)."
    )
    webhook_timestamps: Literal["clock", "wall"] = Field(
        "clock",
        description="X-Fal-Webhook-Timestamp from the engine's clock (deterministic under the "
        "virtual clock) or the real time (for handlers that check it against their own).",
    )

    @field_validator("keys", "allowed_input_hosts", "webhook_allow_hosts", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("faults", mode="before")
    @classmethod
    def _read_faults(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                text = Path(value[1:]).read_text() if value.startswith("@") else value
            except OSError as exc:  # a ValueError, so it is reported as an invalid setting
                raise ValueError(f"cannot read the fault plan: {exc}") from None
            return FaultPlan.model_validate_json(text or "{}")
        return value

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, value: str) -> str:
        return str(Policy.parse(value))

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r}: choose one of {sorted(ENGINES)}")
        return value

    @field_validator("queue_delay", "inference_time")
    @classmethod
    def _check_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 <= low <= high:
            raise ValueError("expected 0 <= low <= high")
        return value

    @field_validator("control_token")
    @classmethod
    def _check_control_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # FAL_MOCK_CONTROL_TOKEN="" means no token
        if any(c.isspace() for c in value.get_secret_value()):
            raise ValueError("the control token must contain no whitespace")
        return value

    @model_validator(mode="after")
    def _check_keys(self) -> MockSettings:
        if any(not key or any(c.isspace() for c in key) for key in self.keys):
            raise ValueError("keys must be non-empty and contain no whitespace")
        return self

    def webhook_options(self) -> WebhookOptions:
        from mock_server.webhooks import WebhookOptions  # cryptography: loaded with the app

        return WebhookOptions(
            allow_hosts=self.webhook_allow_hosts,
            timeout=self.webhook_timeout,
            timestamps=self.webhook_timestamps,
        )

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            seed=self.seed,
            policy=Policy.parse(self.policy),
            engine=self.engine,
            runners=self.runners,
            queue_delay=self.queue_delay,
            inference_time=self.inference_time,
            max_file_bytes=self.max_upload_bytes,
            journal_limit=self.journal_limit,
            finished_limit=self.finished_limit,
            result_retention=self.result_retention,
            file_retention=self.file_retention,
            lipsync=LipsyncOptions(
                allow_remote_inputs=self.allow_remote_inputs,
                allow_private_inputs=self.allow_private_inputs,
                allowed_input_hosts=self.allowed_input_hosts,
                input_root=None if self.input_root is None else str(self.input_root),
                max_input_bytes=self.max_input_bytes,
                max_input_seconds=self.max_input_seconds,
                tracker_backend=self.lipsync_backend,
            ),
            faults=self.faults,
        )
