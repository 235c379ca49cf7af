//! Properties of the Durable Streams model: what it accepts of a correct server, and the
//! answers it refuses.

use proptest::prelude::*;
use squall_models::stream::{Producer, StreamError, StreamModel, StreamOp, StreamRet, Timed};
use squall_models::Model;

fn at(op: StreamOp, t: u64) -> Timed {
    Timed { op, from: t, to: t }
}

fn create(json: bool) -> StreamOp {
    StreamOp::Create {
        stream: "s".into(),
        json,
        ttl: None,
    }
}

fn produce(epoch: u64, seq: u64) -> StreamOp {
    StreamOp::Append {
        stream: "s".into(),
        json: false,
        data: vec![format!("e{epoch}s{seq};")],
        seq: None,
        producer: Some(Producer {
            id: "p".into(),
            epoch,
            seq,
        }),
        close: false,
    }
}

fn offset(n: usize) -> String {
    format!("{n:04}")
}

/// Run `ops` with the answers given, each at its index in ms; the state, or the index of
/// the first refused answer.
fn run(ops: &[(StreamOp, Option<StreamRet>)]) -> Result<squall_models::stream::State, usize> {
    let mut state = StreamModel.init();
    for (i, (op, ret)) in ops.iter().enumerate() {
        state = StreamModel
            .step(&state, &at(op.clone(), i as u64), ret.as_ref())
            .ok_or(i)?;
    }
    Ok(state)
}

fn created(n: usize) -> Option<StreamRet> {
    Some(StreamRet::Created {
        next: offset(n),
        new: true,
    })
}

fn appended(n: usize, epoch: u64, seq: u64) -> Option<StreamRet> {
    Some(StreamRet::Appended {
        next: offset(n),
        closed: false,
        producer: Some((epoch, seq)),
    })
}

proptest! {
    // Fixed seeds: the same cases every run.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0),
        ..ProptestConfig::default()
    })]
    /// A producer retrying every append any number of times gets one 200 and then 204
    /// duplicates, and the stream holds each append once.
    #[test]
    fn retries_are_duplicates(retries in prop::collection::vec(0usize..3, 1..8)) {
        let mut ops = vec![(create(false), created(0))];
        for (seq, &extra) in retries.iter().enumerate() {
            let seq = seq as u64;
            ops.push((produce(0, seq), appended(seq as usize + 1, 0, seq)));
            for _ in 0..extra {
                let dup = StreamRet::Duplicate { next: offset(seq as usize + 1), epoch: 0, seq, closed: false };
                ops.push((produce(0, seq), Some(dup)));
            }
        }
        let state = run(&ops).unwrap();
        let s = state["s"].live.as_ref().unwrap();
        prop_assert_eq!(s.messages.len(), retries.len());
        // A second 200 for the last retry is refused.
        let last = retries.len() as u64 - 1;
        ops.push((produce(0, last), appended(retries.len() + 1, 0, last)));
        prop_assert!(run(&ops).is_err());
    }

    /// Any epoch below the producer's current one is fenced with 403 and the current epoch.
    #[test]
    fn stale_epochs_are_fenced(current in 1u64..5, stale in 0u64..5, seq in 0u64..3) {
        prop_assume!(stale < current);
        let ops = vec![
            (create(false), created(0)),
            (produce(current, 0), appended(1, current, 0)),
        ];
        let fenced = Some(StreamRet::Err(StreamError::Fenced { current }));
        let mut ok = ops.clone();
        ok.push((produce(stale, seq), fenced));
        prop_assert!(run(&ok).is_ok());
        let mut accepted = ops;
        accepted.push((produce(stale, seq), appended(2, stale, seq)));
        prop_assert!(run(&accepted).is_err());
    }

    /// Stream-Seq is ordered bytewise: "10" does not come after "9".
    #[test]
    fn stream_seq_is_bytewise(a in 0u32..100, b in 0u32..100) {
        let seq = |s: u32| StreamOp::Append {
            stream: "s".into(),
            json: false,
            data: vec![format!("{s};")],
            seq: Some(s.to_string()),
            producer: None,
            close: false,
        };
        let first = Some(StreamRet::Appended { next: offset(1), closed: false, producer: None });
        let second = if b.to_string() > a.to_string() {
            Some(StreamRet::Appended { next: offset(2), closed: false, producer: None })
        } else {
            Some(StreamRet::Err(StreamError::SeqOrder))
        };
        prop_assert!(run(&[(create(false), created(0)), (seq(a), first), (seq(b), second)]).is_ok());
    }

    /// Offsets must increase with the messages, also across a delete and a new create.
    #[test]
    fn offsets_never_go_back(appends in 1usize..4, again in 0usize..6) {
        let mut ops = vec![(create(false), created(0))];
        for seq in 0..appends {
            ops.push((produce(0, seq as u64), appended(seq + 1, 0, seq as u64)));
        }
        ops.push((StreamOp::Delete { stream: "s".into() }, Some(StreamRet::Deleted)));
        ops.push((create(false), created(again)));
        prop_assert_eq!(run(&ops).is_ok(), again > appends);
    }
}

/// A gap is 409 with the expected and received sequence; a new producer starts at 0.
#[test]
fn gaps_name_expected_and_received() {
    let gap = |expected, received| Some(StreamRet::Err(StreamError::Gap { expected, received }));
    let ops = vec![
        (create(false), created(0)),
        (produce(0, 3), gap(0, 3)),
        (produce(0, 0), appended(1, 0, 0)),
        (produce(0, 5), gap(1, 5)),
    ];
    assert!(run(&ops).is_ok());
}

/// On a closed stream only the tuple that closed it is a duplicate; a create without
/// `Stream-Closed` is a configuration mismatch.
#[test]
fn closed_streams_answer_only_their_closer() {
    let mut seal = produce(0, 1);
    if let StreamOp::Append { close, .. } = &mut seal {
        *close = true;
    }
    let closed = |n: usize| {
        Some(StreamRet::Err(StreamError::StreamClosed {
            next: offset(n),
        }))
    };
    let ops = vec![
        (create(false), created(0)),
        (produce(0, 0), appended(1, 0, 0)),
        (
            seal.clone(),
            Some(StreamRet::Appended {
                next: offset(2),
                closed: true,
                producer: Some((0, 1)),
            }),
        ),
        (
            seal,
            Some(StreamRet::Duplicate {
                next: offset(2),
                epoch: 0,
                seq: 1,
                closed: true,
            }),
        ),
        (produce(0, 0), closed(2)),
        (create(false), Some(StreamRet::Err(StreamError::Exists))),
    ];
    assert!(run(&ops).is_ok());
}

/// A stream with a TTL answers 404 once its time has surely passed, and not before.
#[test]
fn expiry_follows_the_clock() {
    let state = StreamModel
        .step(
            &StreamModel.init(),
            &at(
                StreamOp::Create {
                    stream: "s".into(),
                    json: false,
                    ttl: Some(2),
                },
                0,
            ),
            created(0).as_ref(),
        )
        .unwrap();
    let head = StreamOp::Head { stream: "s".into() };
    let missing = StreamRet::Err(StreamError::NotFound);
    assert!(StreamModel
        .step(&state, &at(head.clone(), 1_000), Some(&missing))
        .is_none());
    assert!(StreamModel
        .step(&state, &at(head, 2_000), Some(&missing))
        .is_some());
}
