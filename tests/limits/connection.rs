//! Limits of the HTTP/2 connection itself, spoken to frame by frame:
//! keepalive PINGs a peer must answer, and the streams each connection
//! advertises.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::TestServer;
use super::within;

/// Writes one HTTP/2 frame.
async fn write_frame(
    tcp: &mut tokio::net::TcpStream,
    kind: u8,
    flags: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    tcp.write_all(&frame).await
}

/// Reads one frame: (type, flags, payload); `None` once the server closed.
async fn read_frame(tcp: &mut tokio::net::TcpStream) -> Option<(u8, u8, Vec<u8>)> {
    let mut header = [0u8; 9];
    tcp.read_exact(&mut header).await.ok()?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((header[3], header[4], payload))
}

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// A raw HTTP/2 client that acknowledges the server's SETTINGS and, if
/// `answer_pings`, its PINGs; returns how many PINGs it saw before the
/// server closed the connection, or after `enough` PINGs.
async fn ping_peer(server: &TestServer, answer_pings: bool, enough: usize) -> (usize, bool) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    write_frame(&mut tcp, SETTINGS, 0, &[]).await.unwrap();
    let mut pings = 0;
    while let Some((kind, flags, payload)) = read_frame(&mut tcp).await {
        match (kind, flags & ACK) {
            (SETTINGS, 0) => write_frame(&mut tcp, SETTINGS, ACK, &[]).await.unwrap(),
            (PING, 0) => {
                pings += 1;
                if pings == enough {
                    return (pings, false);
                }
                if answer_pings {
                    write_frame(&mut tcp, PING, ACK, &payload).await.unwrap();
                }
            }
            _ => {}
        }
    }
    (pings, true)
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_disconnected() {
    let server = TestServer::start_with(|config| {
        config.limits.keepalive_interval = Duration::from_millis(100);
        config.limits.keepalive_timeout = Duration::from_millis(200);
    })
    .await;
    let (pings, closed) = within("the silent peer", ping_peer(&server, false, 10)).await;
    assert_eq!(
        (pings, closed),
        (1, true),
        "one unanswered PING, then closed"
    );
    let (pings, closed) = within("the answering peer", ping_peer(&server, true, 4)).await;
    assert_eq!(
        (pings, closed),
        (4, false),
        "a peer that answers stays connected"
    );
}

#[tokio::test]
async fn each_connection_advertises_max_concurrent_streams() {
    let server = TestServer::start_with(|config| config.limits.max_concurrent_streams = 3).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/grpc.health.v1.Health/Check",
        server.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, _body) = send.send_request(request, true).unwrap();
    // The server's SETTINGS come before any answer.
    let answered = tokio::select! {
        response = response => response.unwrap(),
        _ = &mut connection => panic!("the connection ended"),
    };
    assert_eq!(answered.status(), 200);
    assert_eq!(connection.max_concurrent_send_streams(), 3);
}
