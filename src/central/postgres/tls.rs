//! TLS to PostgreSQL with rustls (never the system's OpenSSL): libpq's `sslmode` read from the
//! connection string, and the roots its certificate is checked against.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and checks no certificate
//! itself, so `sslmode` is taken out of the string here and each mode becomes a rustls
//! verifier, as libpq behaves:
//! - `disable`: no TLS.
//! - `prefer` (the default, as in libpq) and `require`: TLS (`prefer` falls back to plain when
//!   the server has TLS off); the certificate is not checked, unless a CA file is given, in
//!   which case it must be signed by that CA (libpq does the same when its root certificate
//!   file exists).
//! - `verify-ca`: signed by a trusted CA, whatever name it holds.
//! - `verify-full`: signed by a trusted CA and naming the host of the connection string.
//!
//! Trusted CAs: the CA file's certificates alone when one is given (a private CA, as libpq's
//! `sslrootcert`), else the system's roots and Mozilla's (`webpki-roots`).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use postgres::config::SslMode as WireMode;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::{CentralError, Result};

/// libpq's `sslmode`, as far as this client keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = CentralError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` (plain first, TLS if refused) has no equivalent in the client.
            other => {
                return Err(CentralError::PostgresTlsSettings(format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca or \
                     verify-full"
                )))
            }
        })
    }
}

/// How one database is connected to: the parsed connection string, its `sslmode`, and the
/// rustls client that mode needs (none for `disable`).
pub(crate) struct Connector {
    config: Config,
    mode: SslMode,
    tls: Option<MakeRustlsConnect>,
}

impl Connector {
    /// The connector for `url` (a URL or libpq's `key=value` form, `sslmode` in either), with
    /// `ca_file` (PEM) as the only trusted CA if given. The CA file is read now: a missing or
    /// empty one is an error before any connection.
    pub(crate) fn new(url: &str, ca_file: Option<&Path>) -> Result<Self> {
        let (rest, mode) = take_sslmode(url)?;
        let mut config = Config::from_str(&rest).map_err(CentralError::Postgres)?;
        let mode = mode.unwrap_or(SslMode::Prefer);
        config.ssl_mode(match mode {
            SslMode::Disable => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
        });
        let roots = match ca_file {
            Some(path) => Some(ca_roots(path)?),
            None => None,
        };
        let check = match (mode, roots) {
            (SslMode::Disable, _) => None,
            (SslMode::Prefer | SslMode::Require, None) => Some(Check::Nothing),
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
                Some(Check::Chain(roots))
            }
            (SslMode::VerifyCa, None) => Some(Check::Chain(system_roots())),
            (SslMode::VerifyFull, roots) => {
                Some(Check::ChainAndName(roots.unwrap_or_else(system_roots)))
            }
        };
        let tls = check
            .map(client_config)
            .transpose()?
            .map(MakeRustlsConnect::new);
        Ok(Self { config, mode, tls })
    }

    /// A new connection, its failures told apart: a TLS handshake that failed, a login the
    /// server refused, anything else.
    pub(crate) fn connect(&self) -> Result<Client> {
        let connected = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|e| self.connect_error(e))
    }

    fn connect_error(&self, e: postgres::Error) -> CentralError {
        let sslmode = self.mode.as_str();
        if let Some(reason) = tls_failure(&e) {
            return CentralError::PostgresTls { sslmode, reason };
        }
        if let Some(db) = e.as_db_error() {
            // Class 28, invalid authorization: pg_hba.conf, a password, the role.
            if db.code().code().starts_with("28") || *db.code() == SqlState::INVALID_PASSWORD {
                let hint = if self.mode == SslMode::Disable {
                    " (sslmode=disable sends no TLS: a server that takes only TLS connections, \
                     hostssl in pg_hba.conf, refuses it; use sslmode=verify-full)"
                } else {
                    ""
                };
                return CentralError::PostgresRefused {
                    sslmode,
                    reason: format!("{}{hint}", db.message()),
                };
            }
        }
        CentralError::Postgres(e)
    }
}

/// What a TLS handshake's failure was, with what to do about it; `None` if `e` is not one.
fn tls_failure(e: &postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        // tokio-rustls hands rustls' error inside an io::Error, whose own `source` skips it.
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(tls) = s.downcast_ref::<rustls::Error>().or(inner) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    "; the server's certificate is not signed by a trusted CA: pass the CA \
                     that signed it with --database-ca FILE (PEM)"
                }
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => {
                    "; the certificate does not name the host of the connection string: \
                     connect by a name it holds, or check the CA alone with sslmode=verify-ca"
                }
                _ => "",
            };
            return Some(format!("{tls}{hint}"));
        }
        source = s.source();
    }
    // Said by tokio-postgres itself (the server has TLS off, under `require`): its own text
    // names only the kind, the reason is the source's.
    let text = e.to_string();
    if !text.starts_with("error performing TLS handshake") {
        return None;
    }
    let why = std::error::Error::source(e).map_or(text, |s| s.to_string());
    Some(if why.contains("does not support TLS") {
        format!(
            "{why}; turn ssl on in the server's configuration, or connect with \
             sslmode=disable on a trusted network"
        )
    } else {
        why
    })
}

/// How a server's certificate is checked.
enum Check {
    /// Not at all (libpq's `prefer` and `require` without a root file): encryption only.
    Nothing,
    /// Signed by one of the roots, whatever name it holds.
    Chain(RootCertStore),
    /// Signed by one of the roots and naming the host.
    ChainAndName(RootCertStore),
}

fn provider() -> Arc<CryptoProvider> {
    // ring: the provider reqwest's rustls already uses, so nothing more to compile (aws-lc
    // would need a C toolchain and cmake).
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(check: Check) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| CentralError::PostgresTlsSettings(e.to_string()))?;
    let webpki = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| CentralError::PostgresTlsSettings(e.to_string()))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(EncryptionOnly(Arc::clone(&provider))),
        Check::Chain(roots) => Arc::new(ChainOnly(webpki(roots)?)),
        Check::ChainAndName(roots) => webpki(roots)?,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The certificates of a PEM file as the only trusted roots.
fn ca_roots(path: &Path) -> Result<RootCertStore> {
    let bad = |why: String| {
        CentralError::PostgresTlsSettings(format!(
            "cannot use {} as the database's CA: {why}",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// The system's roots (their files, as `rustls-native-certs` finds them; unreadable ones are
/// skipped) and Mozilla's.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// `prefer` and `require` without a CA file: any certificate, but the handshake's signatures
/// are still checked against it.
#[derive(Debug)]
struct EncryptionOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the whole check but the name. webpki checks the name last, so a name error
/// means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `url` without its `sslmode` (which tokio-postgres would refuse for the `verify-*` modes),
/// and that mode if it named one. Both of tokio-postgres' forms are read as it reads them: a
/// URL's query parameters, or `key=value` pairs. Text this cannot read is left whole, for
/// tokio-postgres to report.
fn take_sslmode(url: &str) -> Result<(String, Option<SslMode>)> {
    let url = url.trim();
    let prefix = ["postgres://", "postgresql://"]
        .iter()
        .find(|p| url.starts_with(**p))
        .map(|p| p.len());
    let (rest, mode) = match prefix {
        Some(start) => take_from_query(url, start),
        None => take_from_pairs(url),
    };
    Ok((rest, mode.map(|m| m.parse()).transpose()?))
}

fn take_from_query(url: &str, start: usize) -> (String, Option<String>) {
    // As tokio-postgres reads it: the credentials end at the first `@`, the query starts at
    // the first `?` after them.
    let after_credentials = url[start..].find('@').map_or(start, |i| start + i + 1);
    let Some(q) = url[after_credentials..]
        .find('?')
        .map(|i| after_credentials + i)
    else {
        return (url.to_owned(), None);
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for chunk in url[q + 1..].split('&') {
        let (key, value) = chunk.split_once('=').unwrap_or((chunk, ""));
        if percent_encoding::percent_decode_str(key).decode_utf8_lossy() == "sslmode" {
            mode = Some(
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        } else {
            kept.push(chunk);
        }
    }
    let mut rest = url[..q].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, mode)
}

fn take_from_pairs(text: &str) -> (String, Option<String>) {
    let mut mode = None;
    let mut kept: Vec<&str> = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key_end = i + c.len_utf8();
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return (text.to_owned(), None);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut end = text.len();
        let mut closed = !quoted;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' if quoted => {
                    end = i + 1;
                    closed = true;
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return (text.to_owned(), None);
        }
        if &text[start..key_end] == "sslmode" {
            mode = Some(value);
        } else {
            kept.push(&text[start..end]);
        }
    }
    (kept.join(" "), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(url: &str) -> (String, Option<SslMode>) {
        take_sslmode(url).expect("a known sslmode")
    }

    #[test]
    fn sslmode_is_taken_out_of_a_urls_query_and_the_rest_kept_as_it_was() {
        assert_eq!(
            taken(
                "postgres://u:p%3F@h:5/db?application_name=x&sslmode=verify-full&connect_timeout=3"
            ),
            (
                "postgres://u:p%3F@h:5/db?application_name=x&connect_timeout=3".to_owned(),
                Some(SslMode::VerifyFull)
            )
        );
        assert_eq!(
            taken("postgresql://h/db?sslmode=verify-ca"),
            ("postgresql://h/db".to_owned(), Some(SslMode::VerifyCa))
        );
        // A `?` in the password is part of the credentials, not the query.
        assert_eq!(
            taken("postgres://u:a?b@h/db"),
            ("postgres://u:a?b@h/db".to_owned(), None)
        );
    }

    #[test]
    fn sslmode_is_taken_out_of_key_value_pairs_quoted_or_not() {
        assert_eq!(
            taken("host=h user=u  sslmode = 'require' password='a b\\'c' dbname=d"),
            (
                "host=h user=u password='a b\\'c' dbname=d".to_owned(),
                Some(SslMode::Require)
            )
        );
        assert_eq!(
            taken("host=h sslmode=disable"),
            ("host=h".to_owned(), Some(SslMode::Disable))
        );
    }

    #[test]
    fn an_sslmode_this_client_does_not_know_is_refused_with_the_list_it_knows() {
        let err = take_sslmode("postgres://h/db?sslmode=allow").expect_err("allow is unknown");
        assert!(
            err.to_string().contains("verify-full") && err.to_string().contains("\"allow\""),
            "{err}"
        );
    }
}
