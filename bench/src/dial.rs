//! Opening a client's TCP connection and WebSocket.
//!
//! Tens of thousands of connections from one address to one server port
//! exhaust the kernel's easy ephemeral ports: past about 15,000, every
//! `connect` searched the port range for a free one, and the load tool spent
//! most of its time (and half the machine's) in that search
//! (`__inet_hash_connect`), slowing the very storm it meant to measure. So
//! clients of a server on a 127.x.x.x address come from many loopback
//! addresses (127.0.1.1 to 127.0.1.250), a few hundred connections each.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Loopback source addresses clients are spread over.
const SOURCE_ADDRESSES: usize = 250;

/// The source address of client `index` when the server is at `server`
/// (`None`: let the kernel choose, for servers off loopback or on IPv6).
pub fn source_for(server: IpAddr, index: usize) -> Option<IpAddr> {
    match server {
        IpAddr::V4(v4) if v4.is_loopback() => {
            // 1..=250: a valid host byte.
            let host = u8::try_from(index % SOURCE_ADDRESSES + 1).unwrap_or(1);
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 1, host)))
        }
        _ => None,
    }
}

/// Opens client `index`'s WebSocket to `url` (small buffers: tens of
/// thousands of clients share this process).
pub async fn open(url: &str, index: usize) -> Result<Socket, String> {
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let server = host.parse::<IpAddr>().ok().zip(uri.port_u16().or(Some(80)));
    let Some((ip, port)) = server.filter(|(ip, _)| source_for(*ip, index).is_some()) else {
        // A name or a non-loopback address: the usual way.
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await.map_err(|e| e.to_string())?;
        return Ok(socket);
    };
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(source) = source_for(ip, index) {
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket.connect(SocketAddr::new(ip, port)).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_clients_are_spread_over_many_addresses() {
        let server = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sources: std::collections::HashSet<_> = (0..1_000).filter_map(|i| source_for(server, i)).collect();
        assert_eq!(sources.len(), SOURCE_ADDRESSES);
        assert!(sources.iter().all(|ip| ip.is_loopback()));
        assert_eq!(source_for("10.0.0.1".parse().expect("ip"), 0), None, "off loopback: the kernel chooses");
        assert_eq!(source_for("::1".parse().expect("ip"), 0), None);
    }
}
