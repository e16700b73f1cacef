//! The observability endpoint: `/metrics` (Prometheus text format from the registry passed
//! in), `/livez` (200 while the process runs) and `/readyz` (200 only while every dependency
//! registered in a [`Readiness`] is up; the body names those that are down).
//!
//! Served by `tiny_http` on its own thread; [`MetricsServer::stop`] (or dropping the
//! server) ends it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use prometheus::{Encoder, IntGaugeVec, Registry, TextEncoder};
use tiny_http::{Header, Request, Response, Server};

use crate::metrics::{Metrics, Service};

/// The default listen address: loopback only, the port the local Prometheus scrapes.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the listener said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The thread could not be spawned.
    #[error("metrics endpoint: cannot start its thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Which dependencies the process needs and whether each is up. Connectors register their
/// service and set it up or down; `/readyz` is 200 only while all registered are up (so with
/// none registered, as in file mode, the process is ready). Cloning shares the state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    deps: Arc<Mutex<BTreeMap<Service, bool>>>,
    gauge: Option<IntGaugeVec>,
}

impl Readiness {
    /// A readiness with no dependency.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// A readiness that also sets `steward_service_up{service}` whenever a state changes.
    pub fn tracked(metrics: &Metrics) -> Self {
        Readiness {
            deps: Arc::default(),
            gauge: Some(metrics.service_up.clone()),
        }
    }

    /// Registers `service` as a dependency, down until [`Readiness::set`] says otherwise.
    pub fn register(&self, service: Service) {
        self.lock().entry(service).or_insert(false);
        if let Some(g) = &self.gauge {
            g.with_label_values(&[service.as_str()]).set(0);
        }
    }

    /// Records whether `service` is reachable (registering it if needed); logs changes.
    pub fn set(&self, service: Service, up: bool) {
        let before = self.lock().insert(service, up);
        if before != Some(up) {
            if up {
                tracing::info!(service = service.as_str(), "dependency up");
            } else {
                tracing::warn!(service = service.as_str(), "dependency down");
            }
        }
        if let Some(g) = &self.gauge {
            g.with_label_values(&[service.as_str()]).set(i64::from(up));
        }
    }

    /// The registered dependencies that are down.
    pub fn down(&self) -> Vec<Service> {
        self.lock()
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(s, _)| *s)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Service, bool>> {
        // The map is valid after any panic elsewhere: a flag write cannot be torn.
        self.deps.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running endpoint. Stops when [`MetricsServer::stop`] is called or it is dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    server: Arc<Server>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Listens on `addr` (e.g. [`DEFAULT_ADDR`]; port 0 picks a free port) and serves
    /// `registry` and `readiness` on a new thread.
    pub fn start(addr: &str, registry: Registry, readiness: Readiness) -> Result<Self, ServeError> {
        let server = Server::http(addr).map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| ServeError::Bind {
                addr: addr.to_owned(),
                source: "not an IP address".into(),
            })?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let (srv, stop) = (server.clone(), stopping.clone());
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || loop {
                match srv.recv() {
                    Ok(rq) => respond(rq, &registry, &readiness),
                    Err(_) if stop.load(Ordering::SeqCst) => break,
                    Err(e) => tracing::warn!(error = %e, "metrics endpoint: accept failed"),
                }
            })?;
        tracing::info!(addr = %bound, "serving /metrics, /livez and /readyz");
        Ok(MetricsServer {
            addr: bound,
            server,
            stopping,
            thread: Some(thread),
        })
    }

    /// The bound address (with the actual port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("metrics endpoint: its thread panicked");
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn text(status: u16, body: String, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut r = Response::from_data(body.into_bytes()).with_status_code(status);
    if let Ok(h) = Header::from_bytes("Content-Type", content_type) {
        r.add_header(h);
    }
    r
}

fn respond(rq: Request, registry: &Registry, readiness: &Readiness) {
    const PLAIN: &str = "text/plain; charset=utf-8";
    let path = rq.url().split('?').next().unwrap_or_default();
    let resp = match path {
        "/metrics" => {
            let enc = TextEncoder::new();
            let mut buf = Vec::new();
            match enc.encode(&registry.gather(), &mut buf) {
                Ok(()) => text(
                    200,
                    String::from_utf8_lossy(&buf).into_owned(),
                    enc.format_type(),
                ),
                Err(e) => text(500, format!("encoding metrics: {e}\n"), PLAIN),
            }
        }
        "/livez" => text(200, "ok\n".into(), PLAIN),
        "/readyz" => {
            let down = readiness.down();
            if down.is_empty() {
                text(200, "ready\n".into(), PLAIN)
            } else {
                let names: Vec<&str> = down.iter().map(|s| s.as_str()).collect();
                text(
                    503,
                    format!("not ready: {} down\n", names.join(", ")),
                    PLAIN,
                )
            }
        }
        _ => text(
            404,
            "not found: try /metrics, /livez or /readyz\n".into(),
            PLAIN,
        ),
    };
    if let Err(e) = rq.respond(resp) {
        tracing::debug!(error = %e, "metrics endpoint: client went away");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// A minimal GET for the unit test (the e2e tests use a real HTTP client).
    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }

    #[test]
    fn serves_metrics_liveness_and_readiness() {
        let registry = Registry::new();
        let metrics = Metrics::new(&registry).expect("metrics");
        let ready = Readiness::tracked(&metrics);
        let server = MetricsServer::start("127.0.0.1:0", registry, ready.clone()).expect("start");
        let addr = server.local_addr();
        assert!(addr.ip().is_loopback());

        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("steward_records_read_total{feed=\"TAX\"} 0"));
        assert_eq!(get(addr, "/livez").0, 200);
        assert_eq!(get(addr, "/readyz").0, 200, "no dependency: ready");
        assert_eq!(get(addr, "/nope").0, 404);

        ready.register(Service::Kafka);
        ready.set(Service::ClickHouse, true);
        let (status, body) = get(addr, "/readyz");
        assert_eq!(status, 503);
        assert!(body.contains("kafka"), "{body}");
        assert!(!body.contains("clickhouse"), "{body}");
        assert!(get(addr, "/metrics")
            .1
            .contains("steward_service_up{service=\"clickhouse\"} 1"));
        ready.set(Service::Kafka, true);
        assert_eq!(get(addr, "/readyz").0, 200);

        server.stop();
        assert!(TcpStream::connect(addr).is_err() || get_fails(addr));
    }

    /// After stop, a connection may still be accepted by the OS backlog but is never served.
    fn get_fails(addr: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return true;
        };
        s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .expect("timeout");
        let _ = write!(s, "GET /livez HTTP/1.0\r\n\r\n");
        let mut out = String::new();
        s.read_to_string(&mut out).map_or(true, |_| out.is_empty())
    }

    #[test]
    fn a_busy_address_is_a_bind_error() {
        let first =
            MetricsServer::start("127.0.0.1:0", Registry::new(), Readiness::new()).expect("start");
        let addr = first.local_addr().to_string();
        let err = MetricsServer::start(&addr, Registry::new(), Readiness::new()).expect_err("busy");
        assert!(err.to_string().contains(&addr), "{err}");
    }
}
