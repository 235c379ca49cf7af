//! Fencing, which linearizability per execution cannot state across histories of leases:
//! at most one holder per execution and lease epoch, and epochs that only grow — a claim or
//! reclaim that finished before another began has the smaller epoch.

use squall_models::suspension::{SuspOp, SuspRet};
use std::collections::BTreeMap;

use crate::check::Violation;
use crate::history::Operation;

/// A lease a claim or reclaim was granted: execution, epoch, lease id.
struct Grant<'a> {
    id: u64,
    eid: &'a str,
    epoch: u64,
    lease: &'a str,
    call: usize,
    done: usize,
}

/// Whether the leases granted in `ops` are fenced: one lease per (execution, epoch), and
/// epochs increasing in real time.
pub fn fences(ops: &[Operation<SuspOp, SuspRet>]) -> Result<(), Violation> {
    let mut grants: Vec<Grant> = Vec::new();
    for o in ops {
        let (
            SuspOp::Claim { eid, .. } | SuspOp::Reclaim { eid, .. },
            Some(SuspRet::Ok(f)),
            Some(done),
        ) = (&o.op, &o.ret, o.done)
        else {
            continue;
        };
        let (Some(lease), Some(Ok(epoch))) = (f.first(), f.get(1).map(|e| e.parse())) else {
            continue;
        };
        grants.push(Grant {
            id: o.id,
            eid,
            epoch,
            lease,
            call: o.call,
            done,
        });
    }
    let mut by_epoch: BTreeMap<(&str, u64), &Grant> = BTreeMap::new();
    for g in &grants {
        if let Some(other) = by_epoch.insert((g.eid, g.epoch), g) {
            if other.lease != g.lease {
                return Err(Violation {
                    what: format!(
                        "two holders of {} at epoch {}: leases {} (#{}) and {} (#{})",
                        g.eid, g.epoch, other.lease, other.id, g.lease, g.id
                    ),
                    ops: vec![other.id.min(g.id), other.id.max(g.id)],
                    ..Default::default()
                });
            }
        }
    }
    for a in &grants {
        if let Some(b) = grants
            .iter()
            .find(|b| b.eid == a.eid && a.done < b.call && b.epoch <= a.epoch)
        {
            return Err(Violation {
                what: format!(
                    "epoch of {} went from {} (#{}) to {} (#{}), which began after",
                    a.eid, a.epoch, a.id, b.epoch, b.id
                ),
                ops: vec![a.id, b.id],
                ..Default::default()
            });
        }
    }
    Ok(())
}
