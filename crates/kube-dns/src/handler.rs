//! The hickory-server request handler: cluster names from the index, the rest
//! forwarded; plus the request metrics.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use kube_common::metrics::Metrics;
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::forward::Forwarder;
use crate::index::ClusterIndex;
use crate::resolve::{lookup, Answer, Lookup, Zone};

type Labels = Vec<(String, String)>;

/// Request metrics, named as CoreDNS names them.
#[derive(Clone)]
pub struct DnsMetrics {
    requests: Family<Labels, Counter>,
    responses: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    forward_failures: Counter,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512,
        1.024, 2.048, 4.096, 8.192,
    ])
}

impl DnsMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let m = Self {
            requests: Family::default(),
            responses: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            forward_failures: Counter::default(),
        };
        metrics.register(
            "coredns_dns_requests",
            "Counter of DNS requests made per protocol and type",
            m.requests.clone(),
        );
        metrics.register(
            "coredns_dns_responses",
            "Counter of responses per rcode",
            m.responses.clone(),
        );
        metrics.register(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took, per type",
            m.duration.clone(),
        );
        metrics.register(
            "coredns_forward_failures",
            "Forwarded requests that no upstream answered",
            m.forward_failures.clone(),
        );
        m
    }

    fn observe(&self, protocol: Protocol, qtype: &str, rcode: ResponseCode, started: Instant) {
        let proto = if protocol == Protocol::Tcp {
            "tcp"
        } else {
            "udp"
        };
        self.requests
            .get_or_create(&vec![
                ("proto".into(), proto.into()),
                ("type".into(), qtype.into()),
            ])
            .inc();
        self.responses
            .get_or_create(&vec![("rcode".into(), rcode_name(rcode))])
            .inc();
        self.duration
            .get_or_create(&vec![("type".into(), qtype.into())])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The rcode as CoreDNS labels it (`NOERROR`, `NXDOMAIN`, ...).
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => u16::from(other).to_string(),
    }
}

/// What the handler serves from: the zone, the latest index (`None` until the
/// caches synced), the upstreams.
pub struct DnsState {
    zone: Zone,
    index: RwLock<Option<Arc<ClusterIndex>>>,
    forwarder: Forwarder,
    metrics: DnsMetrics,
}

impl DnsState {
    pub fn new(zone: Zone, forwarder: Forwarder, metrics: DnsMetrics) -> Self {
        Self {
            zone,
            index: RwLock::new(None),
            forwarder,
            metrics,
        }
    }

    pub fn set_index(&self, index: ClusterIndex) {
        *self.index.write() = Some(Arc::new(index));
    }

    /// Whether the first full view of the cluster has been loaded.
    pub fn synced(&self) -> bool {
        self.index.read().is_some()
    }

    fn index(&self) -> Option<Arc<ClusterIndex>> {
        self.index.read().clone()
    }
}

/// The [`RequestHandler`] over a shared [`DnsState`].
#[derive(Clone)]
pub struct DnsHandler {
    state: Arc<DnsState>,
}

impl DnsHandler {
    pub fn new(state: Arc<DnsState>) -> Self {
        Self { state }
    }
}

/// A response's sections before encoding.
struct Reply {
    metadata: Metadata,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn error(request: &Request, rcode: ResponseCode) -> Self {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        metadata.response_code = rcode;
        Self {
            metadata,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }

    fn authoritative(request: &Request, answer: Answer) -> Self {
        let mut reply = Self::error(request, answer.rcode);
        reply.metadata.authoritative = true;
        reply.answers = answer.answers;
        reply.authorities = answer.authorities;
        reply.additionals = answer.additionals;
        reply
    }

    fn forwarded(request: &Request, upstream: Message) -> Self {
        let mut metadata = upstream.metadata;
        metadata.id = request.metadata.id;
        Self {
            metadata,
            answers: upstream.answers,
            authorities: upstream.authorities,
            additionals: upstream.additionals,
        }
    }
}

/// An OPT record for the response when the request had one, advertising the
/// requester's buffer size (hickory truncates UDP replies to it).
fn response_edns(request: &Request) -> Option<Edns> {
    request.edns.as_ref().map(|edns| {
        let mut out = Edns::new();
        out.set_max_payload(edns.max_payload().clamp(512, 4096));
        out
    })
}

impl DnsState {
    async fn answer(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::error(request, ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::error(request, ResponseCode::FormErr);
        };
        let qname: Name = info.query.name().into();
        let qtype = info.query.query_type();
        let tcp = request.protocol() == Protocol::Tcp;
        let index = self.index();
        let outcome = match &index {
            Some(index) => lookup(index, &self.zone, &qname, qtype),
            None if self.zone.is_authoritative(&qname) => {
                // Not NXDOMAIN before we know the cluster: clients retry a SERVFAIL.
                return Reply::error(request, ResponseCode::ServFail);
            }
            None => Ok(Lookup::Forward),
        };
        match outcome {
            Ok(Lookup::Answer(answer)) => {
                let chase = answer.chase.clone();
                let mut reply = Reply::authoritative(request, answer);
                if let Some(target) = chase {
                    reply.answers.extend(self.chase(target, qtype, tcp).await);
                }
                reply
            }
            Ok(Lookup::Forward) => {
                let skip = |upstream: std::net::SocketAddr| {
                    // A Service IP as upstream would send the query back to us.
                    index
                        .as_ref()
                        .is_some_and(|i| i.is_cluster_ip(upstream.ip()))
                };
                match self.forwarder.forward(request.as_slice(), tcp, skip).await {
                    Ok(upstream) => Reply::forwarded(request, upstream),
                    Err(err) => {
                        self.metrics.forward_failures.inc();
                        tracing::warn!(name = %qname, %qtype, "forwarding: {err}");
                        Reply::error(request, ResponseCode::ServFail)
                    }
                }
            }
            Err(err) => {
                tracing::warn!(name = %qname, %qtype, "building the answer: {err}");
                Reply::error(request, ResponseCode::ServFail)
            }
        }
    }

    /// The upstream's answer records for an ExternalName target (none on failure:
    /// the client still has the CNAME).
    async fn chase(&self, target: Name, qtype: RecordType, tcp: bool) -> Vec<Record> {
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(target.clone(), qtype));
        let Ok(bytes) = query.to_vec() else {
            return Vec::new();
        };
        match self.forwarder.forward(&bytes, tcp, |_| false).await {
            Ok(reply) if reply.metadata.response_code == ResponseCode::NoError => reply.answers,
            Ok(_) => Vec::new(),
            Err(err) => {
                tracing::debug!(%target, "chasing ExternalName: {err}");
                Vec::new()
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| q.query_type().to_string())
            .unwrap_or_else(|| "other".into());
        let reply = self.state.answer(request).await;
        let rcode = reply.metadata.response_code;
        let edns = response_edns(request);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            reply.metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        self.state
            .metrics
            .observe(request.protocol(), &qtype, rcode, started);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                tracing::warn!(src = %request.src(), "sending the response: {err}");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use serde_json::json;

    use super::*;
    use crate::index::tests::{sample, service};

    fn state(upstreams: Vec<std::net::SocketAddr>) -> DnsState {
        DnsState::new(
            Zone::new("cluster.local", 5, 1).unwrap(),
            Forwarder::new(upstreams, Duration::from_millis(200)),
            DnsMetrics::register(&Metrics::new()),
        )
    }

    fn request(name: &str, qtype: RecordType, op_code: OpCode) -> Request {
        let mut m = Message::query();
        m.metadata.op_code = op_code;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        Request::from_bytes(
            m.to_vec().unwrap(),
            "127.0.0.1:5353".parse().unwrap(),
            Protocol::Udp,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn cluster_names_are_servfail_until_synced_then_authoritative() {
        let state = state(Vec::new());
        let q = request(
            "web.default.svc.cluster.local.",
            RecordType::A,
            OpCode::Query,
        );
        assert_eq!(
            state.answer(&q).await.metadata.response_code,
            ResponseCode::ServFail
        );
        state.set_index(sample());
        let reply = state.answer(&q).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert!(reply.metadata.recursion_available);
        assert_eq!(reply.metadata.id, q.metadata.id);
        assert_eq!(reply.answers.len(), 1);
    }

    #[tokio::test]
    async fn other_opcodes_are_not_implemented() {
        let state = state(Vec::new());
        state.set_index(sample());
        let q = request(
            "web.default.svc.cluster.local.",
            RecordType::A,
            OpCode::Update,
        );
        assert_eq!(
            state.answer(&q).await.metadata.response_code,
            ResponseCode::NotImp
        );
    }

    #[tokio::test]
    async fn never_forwards_to_a_service_ip() {
        // An upstream that is some Service's cluster IP (as a node whose
        // resolv.conf names the cluster DNS Service would have) is skipped.
        let listener = tokio::net::UdpSocket::bind("127.0.0.77:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let state = state(vec![upstream]);
        let services = [service(
            json!({"metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "127.0.0.77"}}),
        )];
        state.set_index(ClusterIndex::build(&services, []));
        let q = request("example.com.", RecordType::A, OpCode::Query);
        assert_eq!(
            state.answer(&q).await.metadata.response_code,
            ResponseCode::ServFail
        );
        let mut buf = [0u8; 512];
        assert!(
            listener.try_recv_from(&mut buf).is_err(),
            "the query must not have been sent"
        );
    }
}
