//! An MQTT subscription: QoS 1 in a persistent session, with acknowledgements sent by hand
//! once a message's rows are durable. A message that cannot be stored is acknowledged too,
//! after it went to the dead letters, so that it does not come back.
//!
//! Two tasks share the work. The receiver only polls the connection (which also sends
//! the acknowledgements queued for it) and hands messages on; the writer maps, stores and
//! acknowledges them in groups, so that one flush to disk serves many messages.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Publish, QoS};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::{mpsc, watch};

use crate::message::{self, MessageLimits};
use crate::sink::Sink;
use crate::spec::Mqtt;
use crate::status::ConnectorState;

/// Messages handed from the receiver to the writer. The broker's window of unacknowledged
/// messages (mosquitto's `max_inflight_messages`) should not exceed it: when it is full,
/// the receiver drops the connection and the broker delivers the rest again later.
const RECEIVED: usize = 4096;
/// Messages stored with one flush.
const GROUP: usize = 1024;
/// Payload bytes in a group decoded on the async threads; larger groups go to a blocking one.
const INLINE_BYTES: usize = 64 * 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// Runs the subscription until `stop` is set.
pub(crate) async fn run(mqtt: Mqtt, sink: Sink, limits: MessageLimits, mut stop: watch::Receiver<bool>) {
    let tracker = Arc::clone(&sink.tracker);
    let options = match options(&mqtt) {
        Ok(options) => options,
        Err(reason) => {
            tracker.failed(reason);
            return;
        }
    };
    let (client, mut eventloop) = AsyncClient::new(options, RECEIVED + 64);
    let (received, inbox) = mpsc::channel(RECEIVED);
    let writer = tokio::spawn(write(sink, mqtt.format, limits, inbox, client.clone()));
    let mut pause = FIRST_PAUSE;
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                pause = FIRST_PAUSE;
                tracker.succeeded(ConnectorState::Connected);
                if !connack.session_present
                    && let Err(error) = client.try_subscribe(mqtt.topic.clone(), QoS::AtLeastOnce)
                {
                    tracker.failed(format!("cannot subscribe to `{}`: {error}", mqtt.topic));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(suback))) => {
                if suback.return_codes.iter().any(|code| matches!(code, rumqttc::SubscribeReasonCode::Failure)) {
                    tracker.failed(format!("the broker refused the subscription to `{}`", mqtt.topic));
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if received.try_send(publish).is_err() {
                    tracker.failed(
                        "messages arrive faster than they are stored; reconnecting to let the broker hold them",
                    );
                    eventloop.clean();
                    pause = sleep(pause, &mut stop).await;
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracker.failed(describe(&error));
                pause = sleep(pause, &mut stop).await;
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    tracker.set_state(ConnectorState::Stopped);
    let _ = client.try_disconnect();
    // Sends the DISCONNECT, so that the broker keeps the session for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while eventloop.poll().await.is_ok_and(|event| !matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)))
        {
        }
    })
    .await;
    drop(received);
    let _ = writer.await;
}

/// Maps, stores and acknowledges messages in groups until the receiver is gone.
async fn write(
    mut sink: Sink,
    format: crate::spec::MessageFormat,
    limits: MessageLimits,
    mut inbox: mpsc::Receiver<Publish>,
    client: AsyncClient,
) {
    let mut group = Vec::with_capacity(GROUP);
    while inbox.recv_many(&mut group, GROUP).await > 0 {
        sink.tracker.received(group.len() as u64);
        let mapper = sink.mapper().clone();
        let bytes: usize = group.iter().map(|p| p.payload.len()).sum();
        let (publishes, decoded) = if bytes <= INLINE_BYTES {
            let decoded = decode(&group, format, &mapper, limits);
            (std::mem::take(&mut group), decoded)
        } else {
            let publishes = std::mem::take(&mut group);
            match tokio::task::spawn_blocking(move || {
                let decoded = decode(&publishes, format, &mapper, limits);
                (publishes, decoded)
            })
            .await
            {
                Ok(done) => done,
                Err(error) => {
                    sink.tracker.failed(format!("decoding messages failed: {error}"));
                    return;
                }
            }
        };
        let mut accepted: Vec<RecordBatch> = Vec::with_capacity(decoded.len());
        for (publish, rows) in publishes.iter().zip(decoded) {
            match rows {
                Ok(batch) => accepted.push(batch),
                Err(reason) => {
                    sink.tracker.rejected(Some(&publish.topic), &publish.payload, format!("the message {reason}"))
                }
            }
        }
        let mut pause = FIRST_PAUSE;
        while let Err(error) = sink.write(&accepted).await {
            sink.tracker.failed(format!("cannot store the messages: {error}"));
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
            if inbox.is_closed() {
                return;
            }
        }
        sink.tracker.succeeded(ConnectorState::Connected);
        for publish in &publishes {
            if client.ack(publish).await.is_err() {
                return;
            }
        }
        group.clear();
    }
}

fn decode(
    group: &[Publish],
    format: crate::spec::MessageFormat,
    mapper: &crate::mapping::Mapper,
    limits: MessageLimits,
) -> Vec<Result<RecordBatch, String>> {
    group.iter().map(|publish| message::rows(&publish.payload, format, mapper, limits)).collect()
}

fn options(mqtt: &Mqtt) -> Result<MqttOptions, String> {
    let mut options = MqttOptions::new(mqtt.client_id.clone(), mqtt.host.clone(), mqtt.port);
    options.set_clean_session(false);
    options.set_manual_acks(true);
    options.set_keep_alive(KEEP_ALIVE);
    options.set_max_packet_size(1024 * 1024, 64 * 1024);
    if let Some((user, password)) = &mqtt.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    if mqtt.tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots(mqtt.ca.as_deref())?)
            .with_no_client_auth();
        options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(config))));
    }
    Ok(options)
}

/// The authorities a broker's certificate may be signed by: the ones in `ca`, or else the
/// system's.
pub(crate) fn roots(ca: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let certificate = certificate.map_err(|e| format!("is not PEM text of certificates: {e}"))?;
                roots.add(certificate).map_err(|e| format!("holds a certificate that cannot be used: {e}"))?;
            }
            if roots.is_empty() {
                return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// What went wrong, in the operator's words.
fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword) => {
            "the broker refused the login: bad user name or password".into()
        }
        ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => {
            "the broker refused the login: not authorized".into()
        }
        ConnectionError::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        other => format!("connection to the broker failed: {other}"),
    }
}

async fn sleep(pause: Duration, stop: &mut watch::Receiver<bool>) -> Duration {
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        _ = tokio::time::sleep(pause) => {}
    }
    (pause * 2).min(LONGEST_PAUSE)
}
