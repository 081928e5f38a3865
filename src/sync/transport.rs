//! How a node reaches the central server: the [`Transport`] trait, its HTTP implementation
//! ([`HttpTransport`], reqwest's blocking client with rustls), and one that calls a
//! [`CentralStore`] in the same process ([`DirectTransport`], for tests and tools).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::central::{CentralError, CentralStore, SnapshotError, TenantSnapshots};
use crate::ids::TenantId;
use crate::protocol::{
    Batch, BatchResults, ErrorBody, Operation, OperationPage, OperationResult, SnapshotInfo,
    TenantConfig, SNAPSHOT_CURSOR_HEADER, SNAPSHOT_SHA256_HEADER,
};

/// What kind of failure a sync step met, which decides what the engine does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The network, a 5xx, a 429 or a 503: retried by itself with backoff.
    Transient,
    /// The device token was refused (401): a new token is asked for once, then backoff.
    Auth,
    /// The tenant is not active on the server, or the token is another tenant's (403).
    Suspended,
    /// The server refused what was sent (400): the operations are set aside for a person.
    Refused,
    /// Nothing a retry can mend: an unknown tenant, a damaged local store.
    Fatal,
}

impl ErrorClass {
    /// The stored word.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Auth => "auth",
            ErrorClass::Suspended => "suspended",
            ErrorClass::Refused => "refused",
            ErrorClass::Fatal => "fatal",
        }
    }

    /// What a person can do about an error of this class.
    pub fn action(&self) -> &'static str {
        match self {
            ErrorClass::Transient => {
                "nothing: the terminal keeps selling and retries by itself; if it lasts, check \
                 the network and that the central server is up"
            }
            ErrorClass::Auth => {
                "give the terminal a new device token for this tenant (pos-central token issue)"
            }
            ErrorClass::Suspended => {
                "ask the vendor to reactivate the tenant, or check the token is this tenant's"
            }
            ErrorClass::Refused => {
                "review the operations set aside (pos-node conflicts list); the rest went on. \
                 If the server names clock skew, set this terminal's clock right: its \
                 operations wait until then"
            }
            ErrorClass::Fatal => {
                "check the server URL and tenant id, and run pos-node verify on this database"
            }
        }
    }
}

/// A failed call to the central server.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The server could not be reached or the answer did not arrive (connection refused,
    /// reset, timed out).
    #[error("cannot reach the central server: {0}")]
    Unreachable(String),
    /// The server answered with an error.
    #[error("the central server answered {status} {code}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The error body's stable code (`bad_request`, `unauthorized`, ...).
        code: String,
        /// The server's message.
        message: String,
        /// How long the server asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// An answer that is not what the API promises.
    #[error("the central server's answer is not understood: {0}")]
    Malformed(String),
    /// The server URL given is not one a request can be sent to.
    #[error("the server URL {url:?} {problem}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The local file a snapshot is downloaded into cannot be made or written (it exists
    /// already, a missing directory, a full disk); an existing file is left as it was.
    #[error("cannot write the snapshot to {path}: {reason}")]
    SnapshotFile {
        /// The file asked for.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl TransportError {
    /// The error's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            TransportError::Unreachable(_) | TransportError::Malformed(_) => ErrorClass::Transient,
            TransportError::BadUrl { .. } | TransportError::SnapshotFile { .. } => {
                ErrorClass::Fatal
            }
            TransportError::Server { status, .. } => match status {
                401 => ErrorClass::Auth,
                403 => ErrorClass::Suspended,
                400 | 413 | 422 => ErrorClass::Refused,
                404 => ErrorClass::Fatal,
                _ => ErrorClass::Transient,
            },
        }
    }

    /// Whether the server refused operations stamped too far ahead of its clock: this
    /// terminal's clock runs ahead. Not a reason to set operations aside.
    pub fn is_clock_skew(&self) -> bool {
        matches!(self, TransportError::Server { code, .. } if code == "clock_skew")
    }

    /// How long the server asked to wait before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The central server's sync API, as a node uses it. Every call names the tenant and carries
/// that tenant's device token.
pub trait Transport: Send {
    /// Pushes a batch; one result per operation, in order, after the server's commit.
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError>;
    /// Up to `limit` operations of the tenant's log after sequence number `after`.
    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError>;
    /// The tenant's plan, limits and settings.
    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError>;
    /// Downloads the server's newest snapshot of the tenant into `into` (a file this call
    /// creates; it must not exist), checking the file's SHA-256 against the one announced as
    /// it arrives. `Ok(None)` when the server has no snapshot of the tenant (or does not serve
    /// them): the node then replays the log from the start. On an error `into` may be left
    /// behind, partly written; the caller removes it.
    fn snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        let _ = (tenant, token, into);
        Ok(None)
    }
}

impl<T: Transport + Sync + ?Sized> Transport for Arc<T> {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        (**self).push(tenant, token, operations)
    }
    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        (**self).pull(tenant, token, after, limit)
    }
    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        (**self).config(tenant, token)
    }
    fn snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        (**self).snapshot(tenant, token, into)
    }
}

/// How long a request may take before it is abandoned (and retried later).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP transport: `pos-central`'s API over HTTP or HTTPS (rustls, the bundled web roots).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::blocking::Client,
    base: String,
}

impl HttpTransport {
    /// A transport to the server at `base` (`http://127.0.0.1:8080`, `https://central.example`).
    pub fn new(base: &str) -> Result<Self, TransportError> {
        let base = base.trim_end_matches('/').to_owned();
        let bad = |problem: &str| TransportError::BadUrl {
            url: base.clone(),
            problem: problem.to_owned(),
        };
        let url = reqwest::Url::parse(&base).map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("names no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "must not have a query or fragment (give the server's base URL)",
            ));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pos-tenancy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Unreachable(format!("cannot set up HTTP: {e}")))?;
        Ok(Self { client, base })
    }

    fn url(&self, tenant: &TenantId, rest: &str) -> String {
        // Tenant ids are validated slugs ([a-z0-9-]): nothing to escape.
        format!("{}/v1/tenants/{tenant}/{rest}", self.base)
    }

    fn answer<T: serde::de::DeserializeOwned>(
        result: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<T, TransportError> {
        let response = result.map_err(|e| TransportError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<T>()
                .map_err(|e| TransportError::Malformed(error_chain(&e)));
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let (code, message) = match response.json::<ErrorBody>() {
            Ok(body) => (body.error, body.message),
            Err(_) => (
                status.as_str().to_owned(),
                status.canonical_reason().unwrap_or("error").to_owned(),
            ),
        };
        Err(TransportError::Server {
            status: status.as_u16(),
            code,
            message,
            retry_after,
        })
    }
}

/// An error and its causes on one line (reqwest's own message hides the reason).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for HttpTransport {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        let batch = Batch {
            operations: operations.to_vec(),
        };
        let results: BatchResults = Self::answer(
            self.client
                .post(self.url(tenant, "operations"))
                .bearer_auth(token)
                .json(&batch)
                .send(),
        )?;
        if results.results.len() != operations.len() {
            return Err(TransportError::Malformed(format!(
                "{} results for {} operations",
                results.results.len(),
                operations.len()
            )));
        }
        Ok(results.results)
    }

    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        Self::answer(
            self.client
                .get(self.url(tenant, &format!("operations?after={after}&limit={limit}")))
                .bearer_auth(token)
                .send(),
        )
    }

    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        Self::answer(
            self.client
                .get(self.url(tenant, "config"))
                .bearer_auth(token)
                .send(),
        )
    }

    /// `GET /v1/tenants/{tenant}/snapshot`, streamed into `into`. `Ok(None)` for 404
    /// `no_snapshot`, and for 404 `not_found` (a server without the route); every other error
    /// as the other calls map it.
    ///
    /// Timeout: the client's [`REQUEST_TIMEOUT`] bounds the wait for the answer's head and
    /// then each read of the body (reqwest's blocking client applies it per read, not to the
    /// whole body), so a large file on a slow link downloads as long as bytes keep coming,
    /// and a connection that stalls for 30 s is given up on (an `Unreachable` error).
    fn snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        let response = self
            .client
            .get(self.url(tenant, "snapshot"))
            .bearer_auth(token)
            .send()
            .map_err(|e| TransportError::Unreachable(error_chain(&e)))?;
        if !response.status().is_success() {
            // The same mapping as every other call, from the same code; but `no_snapshot`,
            // and `not_found` (a server from before snapshots, which has no such route), mean
            // there is no snapshot to take: the terminal replays the log.
            return match Self::answer::<serde_json::Value>(Ok(response)) {
                Err(TransportError::Server {
                    status: 404, code, ..
                }) if code == "no_snapshot" || code == "not_found" => Ok(None),
                Err(e) => Err(e),
                Ok(_) => Err(TransportError::Malformed(
                    "an error without an error".into(),
                )),
            };
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .map(str::to_owned)
        };
        let malformed = |what: &str| TransportError::Malformed(format!("a snapshot answer {what}"));
        let cursor = header(SNAPSHOT_CURSOR_HEADER)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| malformed(&format!("without a cursor in {SNAPSHOT_CURSOR_HEADER}")))?;
        let sha256 = header(SNAPSHOT_SHA256_HEADER)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|v| v.to_ascii_lowercase())
            .ok_or_else(|| malformed(&format!("without a SHA-256 in {SNAPSHOT_SHA256_HEADER}")))?;
        let bytes = response
            .content_length()
            .ok_or_else(|| malformed("without a Content-Length"))?;
        let info = SnapshotInfo {
            cursor,
            sha256,
            bytes,
        };
        let mut body = response;
        receive(&mut body, into, &info, "the server")?;
        Ok(Some(info))
    }
}

/// Copies a snapshot from `from` into the new file `into` (never over an existing one),
/// hashing it as it arrives, and syncs it: the size and SHA-256 must be those `expected`
/// announces. On an error the partial file stays, and the error names it.
fn receive(
    from: &mut dyn Read,
    into: &Path,
    expected: &SnapshotInfo,
    source: &str,
) -> Result<(), TransportError> {
    let local = |reason: String| TransportError::SnapshotFile {
        path: into.to_path_buf(),
        reason,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(into)
        .map_err(|e| {
            local(if e.kind() == std::io::ErrorKind::AlreadyExists {
                "the file exists; it was left as it is".to_owned()
            } else {
                e.to_string()
            })
        })?;
    let left = |got: u64| {
        format!(
            "{got} of {} bytes arrived; the partial file {} is not used (the sync round that asked removes it)",
            expected.bytes,
            into.display()
        )
    };
    let mut sha = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(TransportError::Unreachable(format!(
                    "the snapshot download from {source} was cut ({}): {}",
                    error_chain(&e),
                    left(got)
                )))
            }
        };
        got += n as u64;
        if got > expected.bytes {
            return Err(TransportError::Malformed(format!(
                "the snapshot from {source} is longer than the {} bytes announced; the partial \
                 file {} is not used (the sync round that asked removes it)",
                expected.bytes,
                into.display()
            )));
        }
        sha.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| local(format!("{e}; {}", left(got))))?;
    }
    if got != expected.bytes {
        return Err(TransportError::Unreachable(format!(
            "the snapshot download from {source} ended early: {}",
            left(got)
        )));
    }
    let actual = crate::backup::hex(&sha.finalize());
    if actual != expected.sha256 {
        return Err(TransportError::Malformed(format!(
            "the snapshot from {source} does not match its checksum: its SHA-256 is {actual}, \
             {} was announced; the file {} is not used (the sync round that asked removes it)",
            expected.sha256,
            into.display()
        )));
    }
    file.sync_all()
        .map_err(|e| local(format!("cannot sync it: {e}")))?;
    Ok(())
}

/// A transport that calls a [`CentralStore`] in the same process, with no HTTP and no token
/// check (the server's clock check is kept): for tests, simulations and benchmarks of the
/// merge alone.
///
/// With [`DirectTransport::with_snapshots`] it serves the snapshots of a
/// [`TenantSnapshots`] directory as the server does; without, it has none.
pub struct DirectTransport<S: ?Sized> {
    store: Arc<S>,
    snapshots: Option<TenantSnapshots>,
}

impl<S: ?Sized> std::fmt::Debug for DirectTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTransport")
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

impl<S: CentralStore + ?Sized> DirectTransport<S> {
    /// A transport to `store`, without snapshots.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            snapshots: None,
        }
    }

    /// The same transport, serving the newest snapshot of `snapshots` from
    /// [`Transport::snapshot`].
    pub fn with_snapshots(mut self, snapshots: TenantSnapshots) -> Self {
        self.snapshots = Some(snapshots);
        self
    }
}

fn snapshot_error(e: SnapshotError) -> TransportError {
    TransportError::Server {
        status: 500,
        code: "internal".to_owned(),
        message: e.to_string(),
        retry_after: None,
    }
}

fn central_error(e: CentralError) -> TransportError {
    let (status, code) = match &e {
        CentralError::TenantNotFound(_) => (404, "unknown_tenant"),
        CentralError::TenantInactive { .. } => (403, "tenant_inactive"),
        CentralError::BatchRejected { .. }
        | CentralError::BatchTooLarge { .. }
        | CentralError::BadLimit { .. } => (400, "bad_request"),
        _ => (500, "internal"),
    };
    TransportError::Server {
        status,
        code: code.to_owned(),
        message: e.to_string(),
        retry_after: None,
    }
}

impl<S: CentralStore + ?Sized> Transport for DirectTransport<S> {
    fn push(
        &self,
        tenant: &TenantId,
        _token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        // The server's clock check, so a terminal whose clock runs ahead meets here what it
        // meets over HTTP.
        crate::central::check_skew(operations, crate::Timestamp::now(), crate::DEFAULT_MAX_SKEW)
            .map_err(|e| TransportError::Server {
                status: 400,
                code: "clock_skew".to_owned(),
                message: e.to_string(),
                retry_after: None,
            })?;
        self.store.append(tenant, operations).map_err(central_error)
    }

    fn pull(
        &self,
        tenant: &TenantId,
        _token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        self.store
            .operations_after(tenant, after, limit)
            .map_err(central_error)
    }

    fn config(&self, tenant: &TenantId, _token: &str) -> Result<TenantConfig, TransportError> {
        let t = self.store.tenant(tenant).map_err(central_error)?;
        Ok(TenantConfig {
            id: t.id,
            name: t.name,
            plan: t.plan,
            limits: t.limits,
            rate_limit: t.rate_limit.unwrap_or(crate::protocol::RateLimit {
                requests: 100,
                per_secs: 1,
            }),
            settings: t.settings,
        })
    }

    /// The newest snapshot of the tenant, copied into `into` and checked against its
    /// `.sha256` as it is copied; `Ok(None)` without snapshots or when the tenant has none.
    /// The tenant is checked as a pull checks it (unknown, not active).
    fn snapshot(
        &self,
        tenant: &TenantId,
        _token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        let Some(snapshots) = &self.snapshots else {
            return Ok(None);
        };
        self.store
            .operations_after(tenant, 0, 1)
            .map_err(central_error)?;
        let Some((info, path, mut file)) = snapshots.open_newest(tenant).map_err(snapshot_error)?
        else {
            return Ok(None);
        };
        receive(&mut file, into, &info, &path.display().to_string())?;
        Ok(Some(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_that_cannot_be_used_is_refused_saying_what_is_wrong() {
        for (url, says) in [
            ("central.example", "is not a URL"),
            ("ftp://central.example", "http:// or https://"),
            ("http://", "is not a URL"),
            ("http://central.example/?tenant=x", "query"),
        ] {
            match HttpTransport::new(url) {
                Err(e @ TransportError::BadUrl { .. }) => {
                    assert!(e.to_string().contains(says), "{url}: {e}");
                    assert_eq!(e.class(), ErrorClass::Fatal);
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(HttpTransport::new("https://central.example/pos/").is_ok());
        assert!(HttpTransport::new("http://127.0.0.1:8080").is_ok());
    }
}
