//! The server's Prometheus metrics and the middleware that records every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::app::AppState;
use crate::ids::TenantId;
use crate::protocol::{OperationResult, OperationStatus};

/// The server's Prometheus metrics, in a registry of its own (not the process-wide default,
/// so several servers in one test process do not mix).
pub(super) struct Metrics {
    pub(super) registry: Registry,
    operations: IntCounterVec,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    storage: IntGaugeVec,
}

impl Metrics {
    pub(super) fn new() -> Result<Self, prometheus::Error> {
        let operations = IntCounterVec::new(
            Opts::new(
                "pos_central_operations_total",
                "Pushed operations by tenant and outcome (accepted, duplicate, rejected).",
            ),
            &["tenant", "status"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "pos_central_http_requests_total",
                "HTTP requests by route, method and status code.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "pos_central_http_request_duration_seconds",
                "Time from a request's arrival to its answer, by route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        let in_flight = IntGauge::new(
            "pos_central_http_requests_in_flight",
            "Requests being answered now.",
        )?;
        let storage = IntGaugeVec::new(
            Opts::new(
                "pos_central_tenant_storage_bytes",
                "Bytes of each tenant's rows in the central store (CentralStore::storage_bytes), \
                 read at each scrape.",
            ),
            &["tenant"],
        )?;
        let registry = Registry::new();
        registry.register(Box::new(operations.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(storage.clone()))?;
        Ok(Self {
            registry,
            operations,
            requests,
            latency,
            in_flight,
            storage,
        })
    }

    fn request(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[route, method_label(method), status.as_str()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// Sets each tenant's storage gauge to what the store says now.
    pub(super) fn storage(&self, by_tenant: &[(TenantId, u64)]) {
        for (tenant, bytes) in by_tenant {
            self.storage
                .with_label_values(&[tenant.as_str()])
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
    }

    pub(super) fn results(&self, tenant: &TenantId, results: &[OperationResult]) {
        let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
        for r in results {
            match r.status {
                OperationStatus::Accepted => accepted += 1,
                OperationStatus::Duplicate => duplicate += 1,
                OperationStatus::Rejected => rejected += 1,
            }
        }
        // Labels only for tenants that were let in (`Admitted`), so their number is the
        // registry's.
        for (status, n) in [
            ("accepted", accepted),
            ("duplicate", duplicate),
            ("rejected", rejected),
        ] {
            self.operations
                .with_label_values(&[tenant.as_str(), status])
                .inc_by(n);
        }
    }
}

/// The route label of requests that matched no route: never the raw path, which would let
/// any client create series.
const UNMATCHED: &str = "unmatched";

/// A method as a metric label: the standard methods a client of this API may send by name,
/// any other as `other`. HTTP allows any token as a method, so labelling the raw method would
/// let any client, without a token, create series without end.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Records every request, routed or not: route (the matched pattern, or [`UNMATCHED`]; never
/// the raw path), method ([`method_label`]), status and latency.
pub(super) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    state.metrics.in_flight.inc();
    let _guard = InFlight(&state.metrics.in_flight);
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.request(
        &route,
        &method,
        response.status(),
        start.elapsed().as_secs_f64(),
    );
    response
}
