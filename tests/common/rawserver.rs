//! A tiny streaming HTTP/1.1 server for input stream-sim never sends: a
//! line of hundreds of megabytes generated lazily (never held in memory),
//! a gzip bomb, a stall in the middle of a line, a line that drips for
//! ever. Each connection gets a scripted body; the server counts the
//! connections and records the activities it sent.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A piece of a scripted body.
#[derive(Clone, Debug)]
pub enum Part {
    /// `n` Posts with the current time, each ending with `\r\n`.
    Posts(usize),
    /// Raw bytes.
    Data(Vec<u8>),
    /// `len` copies of `byte`, generated in pieces of 64 KiB.
    Filler { byte: u8, len: u64 },
    /// Nothing at all (not even heartbeats) for this long.
    Pause(Duration),
    /// `piece` bytes of `byte` every `every`, for ever (a line that drips).
    Drip { byte: u8, piece: usize, every: Duration },
    /// A heartbeat (`\r\n`) every 200 ms, for ever.
    Heartbeats,
}

#[derive(Clone, Debug)]
pub struct Body {
    pub gzip: bool,
    pub parts: Vec<Part>,
}

pub struct RawServer {
    pub addr: std::net::SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// The keys (`post ID`) of every Post sent.
    pub sent: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    /// Serves `script(n)` to the n-th connection (1-based).
    pub async fn start(script: impl Fn(usize) -> Body + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let (c2, s2) = (connections.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let seq = Arc::new(AtomicUsize::new(0));
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let n = c2.fetch_add(1, Ordering::SeqCst) + 1;
                let body = script(n);
                let (sent, seq) = (s2.clone(), seq.clone());
                tokio::spawn(async move {
                    let _ = serve(tcp, body, sent, seq).await;
                });
            }
        });
        RawServer { addr, connections, sent, task }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The gzip side: compresses what it is given, hands out what is ready.
struct Out {
    gz: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Out {
    fn take(&mut self, data: &[u8]) -> Vec<u8> {
        match self.gz.as_mut() {
            None => data.to_vec(),
            Some(gz) => {
                gz.write_all(data).unwrap();
                gz.flush().unwrap();
                std::mem::take(gz.get_mut())
            }
        }
    }
}

async fn chunk(tcp: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    tcp.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
    tcp.write_all(data).await?;
    tcp.write_all(b"\r\n").await
}

async fn serve(
    mut tcp: TcpStream,
    body: Body,
    sent: Arc<Mutex<Vec<String>>>,
    seq: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    // The request head; the request itself does not matter.
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let encoding = if body.gzip { "Content-Encoding: gzip\r\n" } else { "" };
    tcp.write_all(
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{encoding}\r\n")
            .as_bytes(),
    )
    .await?;
    let mut out = Out { gz: body.gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())) };
    for part in body.parts {
        match part {
            Part::Posts(n) => {
                let mut buf = Vec::new();
                for _ in 0..n {
                    let ms = unix_ms();
                    let id = stream_sim::generator::snowflake(ms, 7, seq.fetch_add(1, Ordering::SeqCst) as u64);
                    buf.extend_from_slice(
                        format!("{{\"created_at\":\"x\",\"id\":{id},\"id_str\":\"{id}\",\"text\":\"hi\",\"user\":{{\"id\":1}},\"timestamp_ms\":\"{ms}\"}}\r\n").as_bytes(),
                    );
                    sent.lock().unwrap().push(format!("post {id}"));
                }
                let data = out.take(&buf);
                chunk(&mut tcp, &data).await?;
            }
            Part::Data(d) => {
                let data = out.take(&d);
                chunk(&mut tcp, &data).await?;
            }
            Part::Filler { byte, len } => {
                let piece = vec![byte; 64 << 10];
                let mut left = len;
                while left > 0 {
                    let n = left.min(piece.len() as u64) as usize;
                    let data = out.take(&piece[..n]);
                    chunk(&mut tcp, &data).await?;
                    left -= n as u64;
                }
            }
            Part::Pause(d) => tokio::time::sleep(d).await,
            Part::Drip { byte, piece, every } => loop {
                let data = out.take(&vec![byte; piece]);
                chunk(&mut tcp, &data).await?;
                tokio::time::sleep(every).await;
            },
            Part::Heartbeats => loop {
                let data = out.take(b"\r\n");
                chunk(&mut tcp, &data).await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            },
        }
    }
    Ok(())
}
