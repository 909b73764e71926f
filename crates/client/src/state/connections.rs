//! Which connection a request goes on: the purpose a connection serves beside its broker, and
//! the choice of a connection to "any broker".
//!
//! A broker answers the requests of one connection one at a time, in order: a Fetch that
//! long-polls for `fetch.max.wait.ms` holds up everything queued behind it on its socket. So a
//! client keeps, per broker, one connection per [`ConnectionPurpose`]: group coordinator
//! traffic (commits, heartbeats, joins, leaves, offset fetches) never shares the socket the
//! consumer fetches on (the Java client does the same with a second node id for the
//! coordinator, `Integer.MAX_VALUE - nodeId`).
//!
//! ```
//! use kafkit::state::connections::{least_loaded, Candidate, ConnectionPurpose};
//!
//! // A Fetch long-polls on the broker connection; the coordinator one is idle.
//! let open = [
//!     Candidate { key: (1, ConnectionPurpose::Broker), in_flight: 1 },
//!     Candidate { key: (1, ConnectionPurpose::Coordinator), in_flight: 0 },
//! ];
//! assert_eq!(least_loaded(open), Some((1, ConnectionPurpose::Coordinator)));
//! ```

/// What a broker connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConnectionPurpose {
    /// Everything but group coordinator traffic: metadata, produce, fetch, list offsets,
    /// admin requests.
    Broker,
    /// Requests to a group coordinator (FindCoordinator excepted): OffsetCommit, OffsetFetch,
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat, and the admin
    /// calls about one group. They are short (JoinGroup aside, which waits for the
    /// rebalance), so nothing on this connection waits behind a long-poll.
    Coordinator,
}

/// Identifies a connection: the broker's node id and what the connection is for.
pub type ConnectionKey = (i32, ConnectionPurpose);

/// An open connection as [`least_loaded`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<K> {
    /// Which connection.
    pub key: K,
    /// Requests outstanding on it (queued or awaiting their response).
    pub in_flight: usize,
}

/// The connection a request for "any broker" (metadata, FindCoordinator) should take among
/// the open ones: the one with the fewest requests outstanding (as Java's
/// `leastLoadedNode`), so it does not queue behind a Fetch long-poll while an idle
/// connection is open. Ties go to the first candidate. `None` when there is none.
pub fn least_loaded<K>(candidates: impl IntoIterator<Item = Candidate<K>>) -> Option<K> {
    let mut best: Option<Candidate<K>> = None;
    for candidate in candidates {
        if best
            .as_ref()
            .is_none_or(|b| candidate.in_flight < b.in_flight)
        {
            let idle = candidate.in_flight == 0;
            best = Some(candidate);
            if idle {
                break;
            }
        }
    }
    best.map(|b| b.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: i32, purpose: ConnectionPurpose, in_flight: usize) -> Candidate<ConnectionKey> {
        Candidate {
            key: (node, purpose),
            in_flight,
        }
    }

    #[test]
    fn an_idle_connection_wins_over_a_busy_one() {
        let open = [
            c(1, ConnectionPurpose::Broker, 1),
            c(2, ConnectionPurpose::Broker, 3),
            c(3, ConnectionPurpose::Broker, 0),
        ];
        assert_eq!(least_loaded(open), Some((3, ConnectionPurpose::Broker)));
    }

    #[test]
    fn the_fewest_outstanding_when_all_are_busy_first_on_ties() {
        let open = [
            c(1, ConnectionPurpose::Broker, 2),
            c(2, ConnectionPurpose::Coordinator, 1),
            c(3, ConnectionPurpose::Broker, 1),
        ];
        assert_eq!(
            least_loaded(open),
            Some((2, ConnectionPurpose::Coordinator))
        );
        let idle = [
            c(4, ConnectionPurpose::Broker, 0),
            c(5, ConnectionPurpose::Broker, 0),
        ];
        assert_eq!(least_loaded(idle), Some((4, ConnectionPurpose::Broker)));
    }

    #[test]
    fn nothing_open_nothing_chosen() {
        assert_eq!(least_loaded(Vec::<Candidate<ConnectionKey>>::new()), None);
    }
}
