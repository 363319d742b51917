"""MinIO (one node, one drive) built from its Go module, as the lake's S3 store.

Why it looks like this:

- MinIO's community edition is source-only (no binaries we may download) and no
  longer maintained, and it publishes no semver tags, so the Go module proxy only
  offers pseudo-versions: ``go install github.com/minio/minio@<pinned>`` builds the
  final commit (its go.mod has no replace directives) with ``-trimpath`` and
  ``CGO_ENABLED=0`` into ``<cache>/minio/<version>/bin``. The build takes minutes on
  two cores, so a marker file makes a second install a no-op.
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
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs

from deploy.process import ManagedProcess, ServiceError, service_status, wait_until

MINIO_MODULE = "github.com/minio/minio"
# The module's final commit (2026-02-12; the repository is archived). MinIO tags
# releases RELEASE.<date>, which are not semver, so a pseudo-version is the pin.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
REGION = "us-east-1"
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


@dataclass
class MinioService:
    """One local MinIO server; ``home`` holds data, credentials, certs dir, log and pid file."""

    home: Path
    cache: Path
    host: str = "127.0.0.1"
    port: int = 19000
    console_port: int = 19001
    go: str = "go"
    start_timeout: float = 60.0

    name = "minio"

    def __post_init__(self) -> None:
        self.process = ManagedProcess("minio", self.home, marker=str(self.data_dir))

    # -- locations ------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

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
    def bin_dir(self) -> Path:
        return self.cache / "minio" / MINIO_VERSION / "bin"

    @property
    def binary(self) -> Path:
        return self.bin_dir / "minio"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    # -- credentials ----------------------------------------------------------------------
    def _credentials(self) -> dict[str, str]:
        try:
            creds = json.loads(self.credentials_file.read_text())
        except FileNotFoundError:
            raise ServiceError(
                f"no MinIO credentials yet ({self.credentials_file}): start the service first"
            ) from None
        return {"access_key": str(creds["access_key"]), "secret_key": str(creds["secret_key"])}

    @property
    def access_key(self) -> str:
        """The root user (S3 access key id), generated on first start."""
        return self._credentials()["access_key"]

    @property
    def secret_key(self) -> str:
        """The root password (S3 secret access key), generated on first start."""
        return self._credentials()["secret_key"]

    def _ensure_credentials(self) -> None:
        if self.credentials_file.exists():
            self.credentials_file.chmod(0o600)
            self._credentials()
            return
        if (self.data_dir / ".minio.sys").exists():
            raise ServiceError(
                f"{self.data_dir} holds data but its credentials file {self.credentials_file} "
                "is gone: restore it, or remove the data directory to start afresh"
            )
        creds = {
            "access_key": f"marketlake-{secrets.token_hex(6)}",
            "secret_key": secrets.token_urlsafe(30),
        }
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)

    # -- install ------------------------------------------------------------------------
    def install(self) -> Path:
        """Build the pinned MinIO with ``go install`` (once; cached outside the repository)."""
        marker = self.bin_dir / ".complete"
        if marker.exists() and self.binary.is_file():
            return self.binary
        go = shutil.which(self.go)
        if go is None:
            raise ServiceError(
                "Go (1.24 or newer) is needed to build MinIO from its Go module: "
                "install it from go.dev/dl or your distribution"
            )
        work = self.bin_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="bin.", dir=work))
        env = {**os.environ, "GOBIN": str(staging), "GOFLAGS": "-trimpath", "CGO_ENABLED": "0"}
        proc = subprocess.run(
            [go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"],
            cwd=work, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0 or not (staging / "minio").is_file():
            shutil.rmtree(staging, ignore_errors=True)
            raise ServiceError(
                f"go install {MINIO_MODULE}@{MINIO_VERSION} failed:\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )
        (staging / ".complete").write_text(MINIO_VERSION)
        if marker.exists():  # another install finished first
            shutil.rmtree(staging, ignore_errors=True)
        else:
            shutil.rmtree(self.bin_dir, ignore_errors=True)
            staging.chmod(0o755)
            staging.rename(self.bin_dir)
        return self.binary

    # -- run ----------------------------------------------------------------------------
    def start(self) -> None:
        """Install if needed, start and wait until live and ready."""
        binary = self.install()
        if self.process.pid() is not None and self.healthy():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self.data_dir.mkdir(exist_ok=True)
        (self.home / "certs").mkdir(exist_ok=True)
        self._ensure_credentials()
        creds = self._credentials()
        self.process.start(
            [str(binary), "server", "--address", self.address,
             "--console-address", self.console_address,
             "--certs-dir", str(self.home / "certs"), str(self.data_dir)],
            env={
                "MINIO_ROOT_USER": creds["access_key"],
                "MINIO_ROOT_PASSWORD": creds["secret_key"],
                "MINIO_SITE_REGION": REGION,
                "MINIO_UPDATE": "off",
                "MINIO_BROWSER": "on",
            },
        )  # fmt: skip
        if not wait_until(self._ready, self.start_timeout, interval=0.5):
            self.process.stop(timeout=15)
            raise ServiceError(
                f"MinIO did not become healthy on {self.endpoint} in {self.start_timeout:.0f}s; "
                f"log {self.process.log_file}:\n" + self.process.log_tail()
            )

    def _ready(self) -> bool:
        if self.process.pid() is None:
            raise ServiceError(f"MinIO exited during start; log:\n{self.process.log_tail()}")
        return self.healthy()

    def healthy(self, timeout: float = 3.0) -> bool:
        """``/minio/health/live`` and ``/minio/health/ready`` both answer 200."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        for check in ("live", "ready"):
            try:
                with opener.open(f"{self.endpoint}/minio/health/{check}", timeout=timeout) as r:
                    if r.status != 200:
                        return False
            except (urllib.error.URLError, OSError):
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
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as resp:
                root = ET.fromstring(resp.read())
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

    def stop(self) -> bool:
        return self.process.stop(timeout=30)

    def kill(self) -> None:
        self.process.kill()

    def status(self) -> dict[str, object]:
        return service_status(
            self.name,
            self.process,
            self.healthy,
            self.address,
            self.data_dir,
            (self.bin_dir / ".complete").exists(),
        )


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
