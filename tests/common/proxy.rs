//! A TCP fault proxy: forwards loopback connections to an upstream (the
//! stream-sim), and can be cut: every connection through it is dropped
//! and new ones are closed at once, until it is mended. One per archiver,
//! so that archivers of one stream miss different stretches.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// New connections are accepted and then never answered.
    hang: Arc<AtomicBool>,
    /// Bumped by each cut: connections of an earlier epoch end.
    epoch: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let hang = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (c, e, hg) = (cut.clone(), epoch.clone(), hang.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if hg.load(Ordering::SeqCst) {
                    tokio::spawn(async move {
                        let _held = client;
                        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                    });
                    continue;
                }
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (c, e) = (c.clone(), e.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let mine = e.load(Ordering::SeqCst);
                    let (mut client, mut server) = (client, server);
                    let forward = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut_off = async {
                        while !c.load(Ordering::SeqCst) && e.load(Ordering::SeqCst) == mine {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = forward => {}
                        _ = cut_off => {}
                    }
                });
            }
        });
        Proxy { addr, cut, hang, epoch }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Drops every connection; new ones are accepted and never answered
    /// (a peer that has gone silent, not away).
    pub fn hang(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.hang.store(true, Ordering::SeqCst);
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.hang.store(false, Ordering::SeqCst);
    }
}
