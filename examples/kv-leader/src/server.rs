//! The server. The leader, `servers[0]`, holds the [`Store`] and answers every request,
//! one connection a task. Any other server host runs nothing.
//!
//! Calls are deduplicated by client: the leader remembers each client's latest sequence
//! number and answer, so a retry gets the first answer, and a late copy of an older request
//! (from a connection the client gave up on) is ignored rather than run out of turn.
//!
//! A watch connection gets its start (computed and subscribed in one step, so no write
//! falls between the two) and then every write it covers as it happens, with a beat when
//! idle so the watcher can tell a stalled connection from a quiet bucket.

use squall::world::Node;
use squall_models::watch::Retention;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};
use turmoil::net::TcpListener;

use crate::store::{covers, Start, Store};
use crate::wire::{Answer, Cmd, Conn, Event, Request, Response, Rev, PORT};
use crate::Bug;

/// Serve as host `node` until it stops.
pub async fn serve(node: Node, retention: Retention, bug: Option<Bug>) -> turmoil::Result {
    if node.servers.first() != Some(&node.name) {
        // No replication: the leader is the whole service.
        return std::future::pending().await;
    }
    let server = Rc::new(Server {
        store: RefCell::new(Store::new(retention, bug)),
        last: RefCell::default(),
        watchers: RefCell::default(),
        patience: crate::patience(&node),
        node,
    });
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::task::spawn_local(server.clone().session(Conn::new(stream)));
    }
}

/// The leader's state, shared by its connections' tasks.
struct Server {
    node: Node,
    store: RefCell<Store>,
    /// Each client's latest call: its sequence number and answer.
    last: RefCell<BTreeMap<String, (u64, Answer)>>,
    watchers: RefCell<Vec<Watcher>>,
    /// How long a send may take before the peer counts as gone.
    patience: Duration,
}

/// A live watch: the prefixes it covers, and where its connection's task takes writes from.
struct Watcher {
    prefixes: Vec<String>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Server {
    async fn session(self: Rc<Self>, mut conn: Conn) {
        // A line that does not parse ends the session like a closed connection.
        while let Ok(Some(request)) = conn.recv::<Request>().await {
            let reply = match request {
                Request::Call { client, seq, cmd } => match self.call(client, seq, &cmd) {
                    Some(answer) => Response::Reply { seq, answer },
                    None => continue,
                },
                Request::Watch { prefixes, after } => {
                    return self.watch(conn, prefixes, after).await
                }
            };
            if !matches!(timeout(self.patience, conn.send(&reply)).await, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// The answer to call `seq` of `client`; `None` for one older than its latest.
    fn call(&self, client: String, seq: u64, cmd: &Cmd) -> Option<Answer> {
        let mut last = self.last.borrow_mut();
        match last.get(&client) {
            Some((latest, _)) if *latest > seq => return None,
            Some((latest, answer)) if *latest == seq => return Some(answer.clone()),
            _ => {}
        }
        let (answer, event) = self.store.borrow_mut().run(cmd, self.node.clock.now());
        if let Some(event) = event {
            self.watchers.borrow_mut().retain(|w| {
                // A watcher whose task has ended is dropped here.
                !covers(&w.prefixes, &event.key) || w.tx.send(event.clone()).is_ok()
            });
        }
        last.insert(client, (seq, answer.clone()));
        Some(answer)
    }

    /// Stream the writes under `prefixes` on `conn` until the watcher hangs up or stops
    /// taking them.
    async fn watch(self: Rc<Self>, mut conn: Conn, prefixes: Vec<String>, after: Option<Rev>) {
        let now = self.node.clock.now();
        let (mut next, mut rx) = match self.store.borrow_mut().watch(&prefixes, after, now) {
            Start::Expired => (Response::Expired, None),
            Start::With { events, rev } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.watchers.borrow_mut().push(Watcher { prefixes, tx });
                (Response::Start { events, rev }, Some(rx))
            }
        };
        loop {
            if !matches!(timeout(self.patience, conn.send(&next)).await, Ok(Ok(()))) {
                return;
            }
            let Some(rx) = &mut rx else {
                return; // Expired: nothing follows.
            };
            next = tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => Response::Event(event),
                    None => return,
                },
                () = sleep(self.patience / 2) => Response::Beat,
                // A watcher sends nothing after its request: this is it hanging up.
                _ = conn.recv::<Request>() => return,
            };
        }
    }
}
