//! A plan: everything a run will do, drawn from the scenario and the seed before the world
//! starts. The run of a plan is deterministic, so a plan can be shrunk and replayed.

use rand::Rng;
use std::time::Duration;

use crate::faults::Schedule;
use crate::protocol::Protocol;
use crate::scenario::Scenario;
use crate::world::stream;

/// What one client does: a pause, then an operation, in turn.
#[derive(Clone, Debug)]
pub struct Step<I> {
    pub think: Duration,
    pub intent: I,
}

#[derive(Clone, Debug)]
pub struct Plan<I> {
    pub seed: u64,
    /// One list of steps a client, `clients[0]` for `client-1`.
    pub clients: Vec<Vec<Step<I>>>,
    pub faults: Schedule,
}

impl<I> Plan<I> {
    /// The plan of `scenario` for `seed`. Each client draws from its own RNG stream, so
    /// adding a client changes no other client's operations.
    pub fn draw<P: Protocol<Intent = I>>(scenario: &Scenario, seed: u64) -> Plan<I> {
        let w = &scenario.workload;
        let clients = (0..scenario.clients)
            .map(|c| {
                let mut rng = stream(seed, &format!("client-{}/workload", c + 1));
                (0..w.ops_per_client)
                    .map(|n| Step {
                        think: rng.random_range(w.think.0..=w.think.1),
                        intent: P::draw(scenario, c + 1, n, &mut rng),
                    })
                    .collect()
            })
            .collect();
        Plan {
            seed,
            clients,
            faults: scenario.faults.clone(),
        }
    }
}
