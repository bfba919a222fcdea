//! [`TcpProxy`]: a TCP proxy on 127.0.0.1 between a service and a server
//! of the test's own, that the test can cut, black-hole, slow down and
//! restore, to see what the service does when the network fails rather
//! than the server.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::infra::InfraError;

/// Where a proxy forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Tcp(addr) => write!(f, "{addr}"),
            Upstream::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A server a [`TcpProxy`] can stand in front of: where to forward, and the
/// URL a client uses to reach it through the proxy.
pub trait ProxyTarget {
    /// Where the proxy forwards.
    fn upstream(&self) -> Upstream;
    /// The URL a client uses to reach the target through `proxy`.
    fn url_through(&self, proxy: SocketAddr) -> String;
}

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Forwards.
    Open,
    /// Resets every connection, live and new.
    Reset,
    /// Accepts, forwards nothing, answers nothing.
    Blackhole,
}

#[derive(Debug, Clone, Copy)]
struct State {
    flow: Flow,
    /// How many cuts so far: a connection older than the last cut is reset.
    cuts: u64,
    latency: Duration,
}

/// A TCP proxy on `127.0.0.1:<free port>` forwarding to a server (TCP or a
/// unix socket). Dropped with the test: its listener and every connection
/// through it close.
///
/// ```ignore
/// let proxy = verily::TcpProxy::to(&server).await?;
/// let service = MyService::connect(&proxy.url()).await?;
/// proxy.cut();                  // every connection reset, new ones too
/// proxy.restore();
/// proxy.blackhole();            // accepted, never answered
/// proxy.set_latency(Duration::from_millis(200));
/// ```
pub struct TcpProxy {
    addr: SocketAddr,
    url: String,
    upstream: Upstream,
    control: watch::Sender<State>,
    accepting: JoinHandle<()>,
}

impl fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("state", &*self.control.borrow())
            .finish()
    }
}

impl TcpProxy {
    /// A proxy in front of `target` (a `PgServer`), whose [`url`](Self::url)
    /// is the target's URL through the proxy.
    pub async fn to(target: &impl ProxyTarget) -> Result<Self, InfraError> {
        let mut proxy = Self::forwarding(target.upstream()).await?;
        proxy.url = target.url_through(proxy.addr);
        Ok(proxy)
    }

    /// A proxy forwarding to `upstream`; its URL is `tcp://127.0.0.1:PORT`.
    pub async fn forwarding(upstream: Upstream) -> Result<Self, InfraError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|error| {
            InfraError::new(format!("cannot listen on 127.0.0.1 for a proxy: {error}"))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|error| InfraError::new(format!("the proxy's address: {error}")))?;
        let (control, watching) = watch::channel(State {
            flow: Flow::Open,
            cuts: 0,
            latency: Duration::ZERO,
        });
        let accepting = tokio::spawn(accept(listener, upstream.clone(), watching));
        Ok(Self {
            addr,
            url: format!("tcp://{addr}"),
            upstream,
            control,
            accepting,
        })
    }

    /// Where clients connect: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The target's URL with the proxy's address in place of the server's.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Where the proxy forwards.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// A network cut: every live connection is reset (the client sees
    /// "connection reset by peer"), and so is every new one until
    /// [`restore`](Self::restore). Clients find out at once.
    pub fn cut(&self) {
        self.control.send_modify(|state| {
            state.flow = Flow::Reset;
            state.cuts += 1;
        });
    }

    /// A silent network: live connections stay open but nothing is
    /// forwarded either way; new ones are accepted and never answered.
    /// Clients find out only through their own timeouts. After
    /// [`restore`](Self::restore), what was held is delivered, as when a
    /// partition heals before TCP gives up.
    pub fn blackhole(&self) {
        self.control
            .send_modify(|state| state.flow = Flow::Blackhole);
    }

    /// Forwards again (latency stays as set).
    pub fn restore(&self) {
        self.control.send_modify(|state| state.flow = Flow::Open);
    }

    /// Delays every chunk of data by `latency`, in each direction (a
    /// request and its answer take at least twice that). Zero removes it.
    pub fn set_latency(&self, latency: Duration) {
        self.control.send_modify(|state| state.latency = latency);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // The accepting task owns the connections' tasks: aborting it
        // drops them, closing every socket.
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, upstream: Upstream, control: watch::Receiver<State>) {
    let mut connections = JoinSet::new();
    let upstream = Arc::new(upstream);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    continue;
                };
                let state = *control.borrow();
                if state.flow == Flow::Reset {
                    reset(&client);
                    continue;
                }
                connections.spawn(serve(client, Arc::clone(&upstream), control.clone(), state.cuts));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Closes with RST instead of FIN: the peer sees a reset, not an end.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// One client's connection: held while black-holed, then connected
/// upstream and relayed until either side ends or a cut resets it.
async fn serve(
    client: TcpStream,
    upstream: Arc<Upstream>,
    control: watch::Receiver<State>,
    cuts: u64,
) {
    let _ = client.set_nodelay(true);
    let mut cut_watch = control.clone();
    let cut = async move {
        let _ = cut_watch.wait_for(|state| state.cuts != cuts).await;
    };
    tokio::pin!(cut);
    let mut flowing = control.clone();
    let connected = async {
        let _ = flowing.wait_for(|state| state.flow == Flow::Open).await;
        match &*upstream {
            Upstream::Tcp(addr) => TcpStream::connect(addr).await.map(|stream| {
                let _ = stream.set_nodelay(true);
                Box::new(stream) as Box<dyn Stream>
            }),
            Upstream::Unix(path) => UnixStream::connect(path)
                .await
                .map(|stream| Box::new(stream) as Box<dyn Stream>),
        }
    };
    let server = tokio::select! {
        biased;
        () = &mut cut => return reset(&client),
        server = connected => server,
    };
    let Ok(server) = server else {
        // The server is down: the client sees its connection reset, as it
        // would from a host with no listener behind the proxy.
        return reset(&client);
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let was_cut = {
        let relay = async {
            tokio::try_join!(
                pump(&mut client_read, &mut server_write, control.clone()),
                pump(&mut server_read, &mut client_write, control.clone()),
            )
        };
        tokio::select! {
            biased;
            () = &mut cut => true,
            _ = relay => false,
        }
    };
    // Whole again, so that dropping it sends no FIN before the reset.
    if was_cut && let Ok(client) = client_read.reunite(client_write) {
        reset(&client);
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Copies one direction chunk by chunk, each delayed by the latency and
/// held while the proxy is black-holed; ends the other side's writing at
/// end of stream.
async fn pump<R, W>(from: &mut R, to: &mut W, mut control: watch::Receiver<State>) -> io::Result<()>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        let latency = control.borrow().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if control
            .wait_for(|state| state.flow != Flow::Blackhole)
            .await
            .is_err()
        {
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
    }
}
