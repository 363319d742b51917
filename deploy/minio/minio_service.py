"""MinIO (one node, one drive) built from its Go module, as the lake's S3 store.

The lifecycle (install once, private home, generated credentials, start, wait,
stop, status) is :class:`deploy.local_service.LocalService`; this module adds
what is MinIO's own: the server's command line and environment,
its health endpoints, buckets and read-only keys. Why it looks like this:

- MinIO's community edition is source-only (no binaries we may download) and no
  longer maintained, and it publishes no semver tags, so the Go module proxy only
  offers pseudo-versions: :class:`deploy.local_service.GoModuleService` builds the
  pinned final commit (its go.mod has no replace directives) with ``CGO_ENABLED=0``
  into ``<cache>/minio/<version>/bin``, once per cache.
- The server binds 127.0.0.1 only (S3 API on ``port``, web console on
  ``console_port``), keeps its drive under ``home/data`` and its (empty) certs
  directory under ``home`` rather than ``~/.minio``.
- Credentials are generated (never ``minioadmin``), kept in ``home/credentials.json``
  (mode 0600) and reused on every later start; they reach the server through its
  environment, never its command line.
- The code speaks plain S3 only (pyarrow's S3FileSystem, region ``us-east-1`` set
  explicitly so nothing asks AWS), so any S3-compatible store can replace MinIO.
- Readers get less than the root key: ``read_only_credentials`` asks MinIO's STS
  (``AssumeRole``, signed with the root key by a small SigV4 signer, standard library
  only) for temporary credentials whose session policy allows only reading one
  bucket (GetObject, ListBucket, GetBucketLocation); they expire (default one hour)
  and carry a session token.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs

from deploy.local_service import GoModuleService, SecretsFile, fetch
from deploy.process import ServiceError

MINIO_MODULE = "github.com/minio/minio"
# The module's final commit (2026-02-12; the repository is archived). MinIO tags
# releases RELEASE.<date>, which are not semver, so a pseudo-version is the pin.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
REGION = "us-east-1"
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


@dataclass
class MinioService(GoModuleService):
    """One local MinIO server; ``home`` holds data, credentials, certs dir, log and pid file."""

    port: int = 19000
    console_port: int = 19001
    go: str = "go"
    start_timeout: float = 60.0

    name = "minio"
    title = "MinIO"
    go_module = MINIO_MODULE
    go_version = MINIO_VERSION

    # -- locations ------------------------------------------------------------------
    @property
    def console_address(self) -> str:
        return f"{self.host}:{self.console_port}"

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://{self.address}"

    @property
    def region(self) -> str:
        return REGION

    @property
    def certs_dir(self) -> Path:
        return self.home / "certs"

    # -- credentials ----------------------------------------------------------------------
    def _secrets(self) -> SecretsFile:
        return SecretsFile(
            self.credentials_file,
            self.title,
            {
                "access_key": lambda: f"marketlake-{secrets.token_hex(6)}",
                "secret_key": lambda: secrets.token_urlsafe(30),
            },
            data=self.data_dir / ".minio.sys",  # a drive written with the root key
        )

    @property
    def access_key(self) -> str:
        """The root user (S3 access key id), generated on first start."""
        return str(self._credentials()["access_key"])

    @property
    def secret_key(self) -> str:
        """The root password (S3 secret access key), generated on first start."""
        return str(self._credentials()["secret_key"])

    # -- configure and run --------------------------------------------------------------
    def configure(self) -> None:
        """The drive and an (empty) certs directory under ``home``, not ``~/.minio``."""
        self.data_dir.mkdir(exist_ok=True)
        self.certs_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.binary), "server", "--address", self.address,
            "--console-address", self.console_address,
            "--certs-dir", str(self.certs_dir), str(self.data_dir),
        ]  # fmt: skip

    def server_env(self) -> dict[str, str]:
        """The root key reaches the server here, never on its command line."""
        creds = self._credentials()
        return {
            "MINIO_ROOT_USER": creds["access_key"],
            "MINIO_ROOT_PASSWORD": creds["secret_key"],
            "MINIO_SITE_REGION": REGION,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "on",
        }

    def healthy(self, timeout: float = 3.0) -> bool:
        """``/minio/health/live`` and ``/minio/health/ready`` both answer."""
        try:
            for check in ("live", "ready"):
                fetch(f"{self.endpoint}/minio/health/{check}", timeout)
        except OSError:
            return False
        return True

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow S3 filesystem on this server with the generated credentials."""
        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=REGION,
            scheme="http",
            endpoint_override=self.address,
            allow_bucket_creation=True,
            connect_timeout=5,
            request_timeout=30,
        )

    def ensure_bucket(self, name: str) -> bool:
        """Create bucket ``name`` through plain S3 unless it exists; True if created."""
        s3 = self.filesystem()
        try:
            if s3.get_file_info(name).type == pafs.FileType.Directory:
                return False
            s3.create_dir(name)
        except OSError as e:
            raise ServiceError(f"could not create bucket {name!r} on {self.endpoint}: {e}") from e
        return True

    def read_only_credentials(self, bucket: str, duration_s: int = 3600) -> dict[str, str]:
        """Temporary credentials that can only read ``bucket`` (MinIO STS ``AssumeRole``).

        Returns ``access_key``, ``secret_key``, ``session_token`` and ``expiration``
        (ISO 8601). The session policy allows GetObject on the bucket's objects and
        ListBucket/GetBucketLocation on the bucket, nothing else; ``duration_s`` is
        900 to 43200 seconds.
        """
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"],
                 "Resource": [f"arn:aws:s3:::{bucket}/*"]},
                {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                 "Resource": [f"arn:aws:s3:::{bucket}"]},
            ],
        }  # fmt: skip
        body = urllib.parse.urlencode(
            {
                "Action": "AssumeRole",
                "Version": "2011-06-15",
                "DurationSeconds": str(duration_s),
                "Policy": json.dumps(policy),
            }
        ).encode()
        request = urllib.request.Request(
            f"{self.endpoint}/",
            data=body,
            method="POST",
            headers=_sigv4_headers(
                self.address, body, self.access_key, self.secret_key, REGION, "sts"
            ),
        )
        try:
            root = ET.fromstring(fetch(request, timeout=10))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise ServiceError(f"MinIO STS AssumeRole refused ({exc.code}): {detail}") from exc
        except (OSError, ET.ParseError) as exc:
            raise ServiceError(f"MinIO STS AssumeRole on {self.endpoint} failed: {exc}") from exc
        creds = root.find(f"{_STS_NS}AssumeRoleResult/{_STS_NS}Credentials")
        fields = {
            "access_key": "AccessKeyId",
            "secret_key": "SecretAccessKey",
            "session_token": "SessionToken",
            "expiration": "Expiration",
        }
        out = {
            k: (creds.findtext(f"{_STS_NS}{v}") if creds is not None else None)
            for k, v in fields.items()
        }
        missing = [k for k, v in out.items() if not v]
        if missing:
            raise ServiceError(f"MinIO STS AssumeRole answered without {', '.join(missing)}")
        return {k: str(v) for k, v in out.items()}


def _sigv4_headers(
    host: str, body: bytes, access_key: str, secret_key: str, region: str, service: str
) -> dict[str, str]:
    """AWS Signature Version 4 headers for a form POST to ``/`` (what STS expects)."""
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "host": host,
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        ["POST", "/", "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed, payload]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return headers
