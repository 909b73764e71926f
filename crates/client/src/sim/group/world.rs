//! The group world: simulated consumers (the real `ClassicMemberState` driven as
//! `io/group/classic.rs` and `consumer/group.rs` drive it), the network between them and the
//! simulated coordinator, the fault schedule, and the end-of-run judgement.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, SyncGroupRequest,
    SyncGroupResponse,
};

use super::checker::Checker;
use super::coordinator::{Answer, Coordinator, CoordinatorFaults, Removal, ReplyTo};
use super::kip848::{Kip848Faults, Kip848Group};
use super::machine::{Kip, Machine};
use crate::error::Error;
use crate::sim::harness::{Run, Violation};
use crate::sim::schedule::Schedule;
use crate::state::group::commit::{commit_outcome, offset_commit_request, MemberIdentity};
use crate::state::group::consumer_member::{
    ConsumerMemberConfig, ConsumerMemberState, HeartbeatResult, SubscribedTopics,
};
use crate::state::group::event::GroupEvent;
use crate::state::group::member::{ClassicMemberState, MemberConfig, MemberRequest, RequestKind};
use crate::state::group::{
    Assignor, CooperativeStickyAssignor, OffsetAndMetadata, RangeAssignor, TopicPartition,
};
use crate::state::rng::{RandomSource, XorShift64Star};

const GROUP: &str = "sim-group";
const NODES: i32 = 3;
const POLL: Duration = Duration::from_millis(200);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const AUTO_COMMIT: Duration = Duration::from_secs(5);
const FAULT_PHASE: Duration = Duration::from_secs(60);
const FILL: Duration = Duration::from_secs(50);
const END: Duration = Duration::from_secs(420);
const STEP_CAP: u64 = 3_000_000;
const RECORDS_PER_POLL: i64 = 8;

/// Which assignor the members use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Range (eager).
    Range,
    /// Cooperative-sticky (incremental).
    Cooperative,
    /// KIP-848 (ConsumerGroupHeartbeat, the coordinator assigns).
    Kip848,
}

/// A scenario: the protocol, the defaults-or-short timeouts, the broken parts (negative
/// controls).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub protocol: Protocol,
    /// Commit a few records past what was processed (commit before processing).
    pub commit_ahead: bool,
    /// The driver swallows its LeaveGroup (the member never leaves).
    pub drop_leave: bool,
    /// The driver starts a newly assigned partition one record past its committed offset.
    pub skip_on_assign: bool,
    pub coordinator: CoordinatorFaults,
    pub kip848: Kip848Faults,
}

impl Scenario {
    pub(crate) fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            commit_ahead: false,
            drop_leave: false,
            skip_on_assign: false,
            coordinator: CoordinatorFaults::default(),
            kip848: Kip848Faults::default(),
        }
    }
}

#[derive(Debug, Clone)]
enum Msg {
    Find,
    Join(JoinGroupRequest),
    Sync(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    Leave(String),
    Commit(OffsetCommitRequest),
    Fetch(Vec<TopicPartition>),
    Hb(ConsumerGroupHeartbeatRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Group(RequestKind),
    Commit,
    Fetch,
    /// A ConsumerGroupHeartbeat with the member's id for it.
    Hb(u64),
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Cut,
    DropReply,
    Stall,
    Crash,
    Close,
    NewMember,
    Move,
    Pause,
    /// A graceful close in the quiet phase (workload, not a fault).
    QuietClose,
}

#[derive(Debug)]
enum Ev {
    Poll(usize),
    Arrive { to: ReplyTo, node: i32, msg: Msg },
    Reply { to: ReplyTo, answer: Answer },
    Timeout(ReplyTo),
    Fault(Fault),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Alive,
    Stalled(Duration),
    Crashed,
    Closed,
}

#[derive(Debug, Clone)]
enum Purpose {
    Auto,
    Revoke(Vec<TopicPartition>),
    Close,
}

#[derive(Debug)]
struct CommitJob {
    offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    purpose: Purpose,
    deadline: Duration,
    /// Sent and not answered yet.
    in_flight: bool,
    /// When to send (again).
    send_at: Duration,
    /// Judged by the checker when first sent (a retry sends the same offsets; the member may
    /// have lost the partitions meanwhile).
    checked: bool,
}

#[derive(Debug)]
struct SimMember {
    state: Machine,
    status: Status,
    member_id: String,
    conn: u64,
    in_flight: BTreeMap<u64, (Kind, Duration, Duration)>,
    drop_next_reply: bool,
    /// Driver: owned partitions and the next offset to process (`None`: offset fetch pending).
    positions: BTreeMap<TopicPartition, Option<i64>>,
    events: VecDeque<GroupEvent>,
    fetch: Option<(Vec<TopicPartition>, bool, Duration)>,
    commit: Option<CommitJob>,
    next_auto_commit: Duration,
    closing: Option<bool>,
}

/// The world of one run.
struct World<'r> {
    run: &'r mut Run,
    sc: Scenario,
    sched: Schedule<Ev>,
    coord: Coordinator,
    members: Vec<SimMember>,
    totals: BTreeMap<TopicPartition, i64>,
    counts: BTreeMap<String, i32>,
    checker: Checker,
    next_req: u64,
    kip: Kip848Group,
}

fn config(protocol: Protocol) -> MemberConfig {
    let assignors: Vec<Arc<dyn Assignor>> = match protocol {
        Protocol::Range => vec![Arc::new(RangeAssignor)],
        Protocol::Cooperative | Protocol::Kip848 => vec![Arc::new(CooperativeStickyAssignor)],
    };
    MemberConfig {
        group_id: GROUP.into(),
        group_instance_id: None,
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(60),
        heartbeat_interval: Duration::from_secs(3),
        assignors,
        rack_id: None,
        retry_backoff: Duration::from_millis(100),
    }
}

fn broker_error(api: ApiKey, code: ResponseError) -> Error {
    Error::Broker {
        api,
        code,
        message: None,
    }
}

impl World<'_> {
    fn now(&self) -> Duration {
        self.run.clock.elapsed()
    }

    fn faulty(&self) -> bool {
        self.now() < FAULT_PHASE
    }

    fn log_end(&self, tp: &TopicPartition) -> i64 {
        let total = self.totals[tp];
        let now = self.now();
        if now >= FILL {
            total
        } else {
            (total as u128 * now.as_millis() / FILL.as_millis()) as i64
        }
    }

    fn delay(&mut self) -> Duration {
        if self.faulty() && self.run.chance(0.03) {
            self.run
                .duration_between(Duration::from_millis(200), Duration::from_secs(4))
        } else {
            self.run
                .duration_between(Duration::from_micros(500), Duration::from_millis(5))
        }
    }

    fn add_member(&mut self) {
        let i = self.members.len();
        let now_i = self.run.clock.now();
        let topics: Vec<String> = self.counts.keys().cloned().collect();
        let state = if self.sc.protocol == Protocol::Kip848 {
            let config = ConsumerMemberConfig::new(GROUP)
                .with_rebalance_timeout(config(self.sc.protocol).rebalance_timeout);
            let subscription = SubscribedTopics::Topics(topics.into_iter().collect());
            let member = ConsumerMemberState::new(config, subscription, format!("k{i}"), now_i)
                .with_rng(XorShift64Star::new(self.run.rng.next_u64()));
            Machine::Kip(Box::new(Kip {
                state: member,
                coordinator: None,
                finding: false,
                find_at: now_i,
                leave: None,
                names: topic_ids()
                    .into_iter()
                    .map(|(name, id)| (id, name))
                    .collect(),
            }))
        } else {
            Machine::Classic(Box::new(ClassicMemberState::new(
                config(self.sc.protocol),
                topics,
                now_i,
            )))
        };
        self.members.push(SimMember {
            state,
            status: Status::Alive,
            member_id: String::new(),
            conn: 0,
            in_flight: BTreeMap::new(),
            drop_next_reply: false,
            positions: BTreeMap::new(),
            events: VecDeque::new(),
            fetch: None,
            commit: None,
            next_auto_commit: self.now() + AUTO_COMMIT,
            closing: None,
        });
        self.run.log(format_args!("member {i} starts"));
        let at = self.now() + self.run.duration_between(Duration::ZERO, POLL);
        self.sched.at(at, Ev::Poll(i));
    }

    fn send(&mut self, m: usize, kind: Kind, node: i32, msg: Msg) {
        self.next_req += 1;
        let req = self.next_req;
        let now = self.now();
        let timeout = match kind {
            Kind::Group(RequestKind::JoinGroup) => REQUEST_TIMEOUT
                .max(config(self.sc.protocol).rebalance_timeout + Duration::from_secs(5)),
            _ => REQUEST_TIMEOUT,
        };
        let member = &mut self.members[m];
        member.in_flight.insert(req, (kind, now, timeout));
        let to = ReplyTo {
            member: m,
            conn: member.conn,
            req,
        };
        let at = now + self.delay();
        self.sched.at(at, Ev::Arrive { to, node, msg });
    }

    fn coordinator_node(&self, m: usize) -> i32 {
        self.members[m]
            .state
            .coordinator()
            .unwrap_or(self.coord.node)
    }

    /// Sends what the member's state asks for, applies its events.
    fn drive(&mut self, m: usize) {
        if self.members[m].status != Status::Alive {
            return;
        }
        let now_i = self.run.clock.now();
        if let Machine::Kip(_) = self.members[m].state {
            self.drive_kip(m);
        }
        for _ in 0..100 {
            let Machine::Classic(state) = &mut self.members[m].state else {
                break;
            };
            let Some(request) = state.poll_request(now_i) else {
                break;
            };
            let node = self.coordinator_node(m);
            match request {
                MemberRequest::FindCoordinator => {
                    let bootstrap = self.run.index(NODES as usize) as i32;
                    self.send(
                        m,
                        Kind::Group(RequestKind::FindCoordinator),
                        bootstrap,
                        Msg::Find,
                    )
                }
                MemberRequest::JoinGroup(r) => {
                    self.send(m, Kind::Group(RequestKind::JoinGroup), node, Msg::Join(r))
                }
                MemberRequest::SyncGroup(r) => {
                    self.send(m, Kind::Group(RequestKind::SyncGroup), node, Msg::Sync(r))
                }
                MemberRequest::Heartbeat(r) => self.send(
                    m,
                    Kind::Group(RequestKind::Heartbeat),
                    node,
                    Msg::Heartbeat(r),
                ),
                MemberRequest::LeaveGroup(l) => {
                    if self.sc.drop_leave {
                        self.run
                            .log(format_args!("member {m}: LeaveGroup swallowed"));
                        if let Machine::Classic(s) = &mut self.members[m].state {
                            s.handle_leave(now_i);
                        }
                    } else {
                        self.send(
                            m,
                            Kind::Group(RequestKind::LeaveGroup),
                            node,
                            Msg::Leave(l.member_id),
                        )
                    }
                }
                MemberRequest::PartitionCounts(_) => {
                    let counts = self.counts.clone();
                    if let Machine::Classic(s) = &mut self.members[m].state {
                        s.handle_partition_counts(now_i, counts);
                    }
                }
            }
        }
        if let Some(id) = self.members[m].state.member_id() {
            self.members[m].member_id = id;
        }
        while let Some(e) = self.members[m].state.poll_event() {
            self.run.log(format_args!("member {m}: event {e:?}"));
            if let GroupEvent::Lost(tps) = &e {
                // Nothing is processed (nor committed) until the queue is applied, and this
                // before anything else: the member stopped with these partitions now.
                for tp in tps {
                    self.checker.release(m, tp);
                }
            }
            self.members[m].events.push_back(e);
        }
        self.apply_events(m);
        self.send_jobs(m);
        let member = &mut self.members[m];
        if member.state.is_done() {
            if member.closing.is_some() {
                member.status = Status::Closed;
                self.run.log(format_args!("member {m} closed"));
            } else if member.status == Status::Alive {
                let fatal = member.state.fatal().map(|e| e.to_string());
                self.fail_now("liveness", format!("member {m} failed: {fatal:?}"));
            }
        }
    }

    fn fail_now(&mut self, invariant: &'static str, detail: String) {
        if self.checker.violation.is_none() {
            self.checker.violation = Some(Violation::new(invariant, detail));
        }
    }

    /// The consumer's side of the events, in order; a revocation waits for its commit, an
    /// assignment for its offsets.
    fn apply_events(&mut self, m: usize) {
        let now_i = self.run.clock.now();
        loop {
            let member = &mut self.members[m];
            if member.fetch.is_some()
                || member
                    .commit
                    .as_ref()
                    .is_some_and(|c| !matches!(c.purpose, Purpose::Auto))
            {
                return;
            }
            let Some(event) = member.events.pop_front() else {
                return;
            };
            match event {
                GroupEvent::Assigned(tps) => {
                    for tp in &tps {
                        member.positions.insert(tp.clone(), None);
                        self.checker.hold(m, tp);
                    }
                    let now = self.now();
                    self.members[m].fetch = Some((tps, false, now));
                }
                GroupEvent::Revoked(tps) => {
                    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = tps
                        .iter()
                        .filter_map(|tp| {
                            member
                                .positions
                                .get(tp)
                                .copied()
                                .flatten()
                                .map(|p| (tp.clone(), OffsetAndMetadata::new(p)))
                        })
                        .collect();
                    if offsets.is_empty() || member.state.commit_generation().is_none() {
                        self.give_up(m, &tps);
                        self.members[m].state.revocation_done(now_i, &tps);
                    } else {
                        // An auto-commit in flight is superseded (its answer is ignored).
                        let now = self.now();
                        self.members[m].commit = Some(CommitJob {
                            offsets,
                            purpose: Purpose::Revoke(tps),
                            deadline: now + REQUEST_TIMEOUT,
                            in_flight: false,
                            send_at: now,
                            checked: false,
                        });
                    }
                }
                GroupEvent::Lost(tps) => self.give_up(m, &tps),
            }
        }
    }

    fn give_up(&mut self, m: usize, tps: &[TopicPartition]) {
        for tp in tps {
            self.members[m].positions.remove(tp);
            self.checker.release(m, tp);
        }
    }

    fn send_jobs(&mut self, m: usize) {
        let now = self.now();
        let node = self.coord.node;
        let member = &mut self.members[m];
        if let Some((tps, in_flight, at)) = &mut member.fetch {
            if !*in_flight && now >= *at {
                *in_flight = true;
                let tps = tps.clone();
                self.send(m, Kind::Fetch, node, Msg::Fetch(tps));
            }
        }
        let member = &mut self.members[m];
        let Some(job) = &mut member.commit else {
            return;
        };
        if job.in_flight || now < job.send_at {
            return;
        }
        let Some(g) = member.state.commit_generation() else {
            self.run
                .log(format_args!("member {m}: commit refused (no generation)"));
            self.commit_done(m);
            return;
        };
        let identity = MemberIdentity::member(g.0, g.1, None);
        let offsets = job.offsets.clone();
        job.in_flight = true;
        if !std::mem::replace(&mut job.checked, true) {
            for (tp, o) in &offsets {
                self.checker.commit(m, tp, o.offset);
            }
        }
        match offset_commit_request(GROUP, &identity, &offsets, 9) {
            Ok(req) => {
                let node = self.coordinator_node(m);
                self.send(m, Kind::Commit, node, Msg::Commit(req));
            }
            Err(e) => self.fail_now("liveness", format!("commit request: {e}")),
        }
    }

    fn commit_done(&mut self, m: usize) {
        let Some(job) = self.members[m].commit.take() else {
            return;
        };
        let now_i = self.run.clock.now();
        match job.purpose {
            Purpose::Auto => {}
            Purpose::Revoke(tps) => {
                self.give_up(m, &tps);
                self.members[m].state.revocation_done(now_i, &tps);
            }
            Purpose::Close => self.close_state(m),
        }
    }

    fn close_state(&mut self, m: usize) {
        let now_i = self.run.clock.now();
        let tps: Vec<TopicPartition> = self.members[m].positions.keys().cloned().collect();
        self.give_up(m, &tps);
        // A close can only be judged when the member is still in the group as the coordinator
        // sees it (one already expired has nothing to leave) and knows where the coordinator is.
        let id = self.members[m].member_id.clone();
        // A fault since the close began (cleared the flag) or a paused coordinator spoils it too.
        let clean = self.members[m].closing.unwrap_or(true)
            && self.now() >= self.coord.paused_until
            && self.members[m].state.coordinator().is_some()
            && !id.is_empty()
            && self.knows(&id);
        self.members[m].closing = Some(clean);
        self.members[m].state.close(now_i);
    }

    fn commit_failed(&mut self, m: usize, retriable: bool, why: &str) {
        let now = self.now();
        let backoff = Duration::from_millis(100);
        let member = &mut self.members[m];
        let Some(job) = &mut member.commit else {
            return;
        };
        job.in_flight = false;
        self.run
            .log(format_args!("member {m}: commit failed: {why}"));
        if retriable && now + backoff < job.deadline {
            job.send_at = now + backoff;
        } else {
            self.commit_done(m);
        }
    }

    /// The KIP-848 member's I/O task: the coordinator lookup, heartbeats, the leave.
    fn drive_kip(&mut self, m: usize) {
        let now_i = self.run.clock.now();
        let drop_leave = self.sc.drop_leave;
        let Machine::Kip(kip) = &mut self.members[m].state else {
            return;
        };
        let mut out: Option<(Kind, i32, Msg)> = None;
        if let Some(leave) = kip.leave.take() {
            if let Some(node) = kip.coordinator {
                if drop_leave {
                    self.run.log(format_args!("member {m}: leave swallowed"));
                } else {
                    out = Some((Kind::Hb(u64::MAX), node, Msg::Hb(leave)));
                }
            }
        } else if let Some(node) = kip.coordinator {
            if kip.state.poll_metadata(now_i) {
                let names = kip.names.clone();
                kip.state.handle_metadata(now_i, &names);
            }
            if let Some(hb) = kip.state.poll_heartbeat(now_i, 1) {
                out = Some((Kind::Hb(hb.id), node, Msg::Hb(hb.request)));
            }
        } else {
            let _ = kip.state.poll_expired(now_i);
            if !kip.finding && now_i >= kip.find_at {
                kip.finding = true;
                let bootstrap = self.run.index(NODES as usize) as i32;
                out = Some((
                    Kind::Group(RequestKind::FindCoordinator),
                    bootstrap,
                    Msg::Find,
                ));
            }
        }
        if let Some((kind, node, msg)) = out {
            self.send(m, kind, node, msg);
        }
    }

    /// Whether the coordinator has member `id` in the group now.
    fn knows(&self, id: &str) -> bool {
        if self.sc.protocol == Protocol::Kip848 {
            self.kip.knows(id)
        } else {
            self.coord.knows(id)
        }
    }

    /// The application's poll: process, auto-commit.
    fn poll(&mut self, m: usize) {
        let now = self.now();
        match self.members[m].status.clone() {
            Status::Crashed | Status::Closed => return,
            Status::Stalled(until) if now < until => {
                self.sched.at(until, Ev::Poll(m));
                return;
            }
            Status::Stalled(_) => {
                self.run.log(format_args!("member {m} resumes"));
                self.members[m].status = Status::Alive;
            }
            Status::Alive => {}
        }
        self.sched.at(now + POLL, Ev::Poll(m));
        self.drive(m);
        if self.members[m].status != Status::Alive {
            return;
        }
        let now_i = self.run.clock.now();
        if self.members[m].closing.is_none() {
            self.members[m].state.poll_tick(now_i);
        }
        let blocked = !self.members[m].events.is_empty();
        let owned: Vec<(TopicPartition, i64)> = self.members[m]
            .positions
            .iter()
            .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
            .collect();
        if !blocked && self.members[m].closing.is_none() {
            for (tp, pos) in owned {
                let end = self.log_end(&tp);
                let to = end.min(pos + RECORDS_PER_POLL);
                if to > pos {
                    let ids: Vec<String> =
                        self.members.iter().map(|x| x.member_id.clone()).collect();
                    let statuses: Vec<bool> = self
                        .members
                        .iter()
                        .map(|x| !matches!(x.status, Status::Crashed | Status::Closed))
                        .collect();
                    let known: Vec<bool> = (0..ids.len())
                        .map(|i| statuses[i] && !ids[i].is_empty() && self.knows(&ids[i]))
                        .collect();
                    self.checker.process(m, &tp, pos, to, |i| known[i]);
                    self.members[m].positions.insert(tp, Some(to));
                }
            }
        }
        let member = &mut self.members[m];
        if member.closing.is_none()
            && member.commit.is_none()
            && member.events.is_empty()
            && now >= member.next_auto_commit
        {
            member.next_auto_commit = now + AUTO_COMMIT;
            let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = member
                .positions
                .iter()
                .filter_map(|(tp, p)| p.map(|p| (tp.clone(), p)))
                .map(|(tp, p)| {
                    let o = if self.sc.commit_ahead {
                        (p + 3).min(self.totals[&tp])
                    } else {
                        p
                    };
                    (tp, OffsetAndMetadata::new(o))
                })
                .collect();
            if !offsets.is_empty() {
                member.commit = Some(CommitJob {
                    offsets,
                    purpose: Purpose::Auto,
                    deadline: now + REQUEST_TIMEOUT,
                    in_flight: false,
                    send_at: now,
                    checked: false,
                });
            }
        }
        self.drive(m);
    }

    fn fail_request(&mut self, m: usize, kind: Kind, error: &Error) {
        let now_i = self.run.clock.now();
        match kind {
            Kind::Group(k) => match &mut self.members[m].state {
                Machine::Classic(s) => s.handle_request_failed(now_i, k, error),
                Machine::Kip(kip) => {
                    kip.finding = false;
                    kip.find_at = now_i + Duration::from_millis(100);
                }
            },
            Kind::Hb(id) => {
                if let Machine::Kip(kip) = &mut self.members[m].state {
                    let result = kip.state.handle_heartbeat_failure(now_i, id, error);
                    if matches!(result, HeartbeatResult::FindCoordinator) {
                        kip.coordinator = None;
                    }
                }
            }
            Kind::Commit => self.commit_failed(m, error.is_retriable(), &error.to_string()),
            Kind::Fetch => {
                let now = self.now();
                if let Some((_, in_flight, at)) = &mut self.members[m].fetch {
                    *in_flight = false;
                    *at = now + Duration::from_millis(100);
                }
            }
        }
    }

    /// Closes member `m`'s connection: whatever is in flight fails.
    fn cut(&mut self, m: usize, why: &str) {
        let member = &mut self.members[m];
        member.conn += 1;
        let in_flight = std::mem::take(&mut member.in_flight);
        if let Some(clean) = &mut member.closing {
            *clean = false;
        }
        self.run.log(format_args!(
            "member {m}: connection cut ({why}), {} requests fail",
            in_flight.len()
        ));
        for (_, (kind, _, _)) in in_flight {
            let api = match kind {
                Kind::Commit => ApiKey::OffsetCommit,
                Kind::Fetch => ApiKey::OffsetFetch,
                Kind::Group(RequestKind::JoinGroup) => ApiKey::JoinGroup,
                Kind::Group(RequestKind::SyncGroup) => ApiKey::SyncGroup,
                Kind::Group(RequestKind::LeaveGroup) => ApiKey::LeaveGroup,
                Kind::Group(RequestKind::FindCoordinator) => ApiKey::FindCoordinator,
                Kind::Group(_) => ApiKey::Heartbeat,
                Kind::Hb(_) => ApiKey::ConsumerGroupHeartbeat,
            };
            let error = Error::ConnectionClosed {
                broker: "sim".into(),
                api,
            };
            self.fail_request(m, kind, &error);
        }
        self.drive(m);
    }

    fn arrive(&mut self, to: ReplyTo, node: i32, msg: Msg) {
        let now = self.now();
        if now < self.coord.paused_until {
            let at = self.coord.paused_until;
            self.sched.at(at, Ev::Arrive { to, node, msg });
            return;
        }
        let not_coordinator = node != self.coord.node || now < self.coord.unavailable_until;
        let injected = self.faulty() && !matches!(msg, Msg::Find) && self.run.chance(0.02);
        if not_coordinator || injected {
            if let Some(clean) = &mut self.members[to.member].closing {
                // The LeaveGroup (or the commit before it) may be the one refused.
                *clean = false;
            }
        }
        let answers: Vec<(ReplyTo, Answer)> = if not_coordinator || injected {
            let code = if not_coordinator {
                ResponseError::NotCoordinator
            } else {
                [
                    ResponseError::NotCoordinator,
                    ResponseError::CoordinatorNotAvailable,
                    ResponseError::CoordinatorLoadInProgress,
                ][self.run.index(3)]
            };
            match msg {
                Msg::Find => vec![(to, self.coord.find(now))],
                _ => vec![(to, error_answer(&msg, code))],
            }
        } else {
            match &msg {
                Msg::Find => vec![(to, self.coord.find(now))],
                Msg::Join(r) => self.coord.join(now, to, r),
                Msg::Sync(r) => self.coord.sync(now, to, r),
                Msg::Heartbeat(r) => vec![(to, self.coord.heartbeat(now, r))],
                Msg::Leave(id) => {
                    let mut out = self.coord.leave(now, id);
                    out.push((to, Answer::Leave));
                    out
                }
                Msg::Commit(r) if self.sc.protocol == Protocol::Kip848 => {
                    let e = self.kip.check_commit(now, r);
                    vec![(to, self.coord.commit_checked(now, r, e))]
                }
                Msg::Commit(r) => vec![(to, self.coord.commit(now, r))],
                Msg::Hb(r) => {
                    let response = self.kip.heartbeat(now, r, &mut self.coord.removals);
                    let owned = r.topic_partitions.as_ref().map(|t| {
                        t.iter()
                            .map(|t| (t.topic_id.as_u128(), t.partitions.clone()))
                            .collect::<Vec<_>>()
                    });
                    let given = response.assignment.as_ref().map(|a| {
                        a.topic_partitions
                            .iter()
                            .map(|t| (t.topic_id.as_u128(), t.partitions.clone()))
                            .collect::<Vec<_>>()
                    });
                    self.run.log(format_args!(
                        "coordinator: heartbeat {} epoch {} owned {owned:?} → {} epoch {} {given:?}",
                        r.member_id.as_str(),
                        r.member_epoch,
                        response.error_code,
                        response.member_epoch
                    ));
                    vec![(to, Answer::Hb(response))]
                }
                Msg::Fetch(tps) => vec![(to, self.coord.fetch(tps))],
            }
        };
        self.answer(answers);
    }

    fn answer(&mut self, answers: Vec<(ReplyTo, Answer)>) {
        for (to, answer) in answers {
            let at = self.now() + self.delay();
            self.sched.at(at, Ev::Reply { to, answer });
        }
    }

    fn reply(&mut self, to: ReplyTo, answer: Answer) {
        let m = to.member;
        let now = self.now();
        match self.members[m].status {
            Status::Crashed | Status::Closed => return,
            Status::Stalled(until) if now < until => {
                self.sched.at(until, Ev::Reply { to, answer });
                return;
            }
            _ => {}
        }
        if to.conn != self.members[m].conn {
            return;
        }
        if self.members[m].drop_next_reply {
            self.members[m].drop_next_reply = false;
            if let Some((_, sent, timeout)) = self.members[m].in_flight.get(&to.req) {
                let at = *sent + *timeout;
                self.run.log(format_args!(
                    "member {m}: reply to request {} dropped",
                    to.req
                ));
                self.sched.at(at.max(now), Ev::Timeout(to));
                return;
            }
        }
        let Some((kind, _, _)) = self.members[m].in_flight.remove(&to.req) else {
            return;
        };
        let now_i = self.run.clock.now();
        if let Machine::Kip(kip) = &mut self.members[m].state {
            match answer {
                Answer::Find(r) => {
                    kip.finding = false;
                    match r {
                        Ok(node) => kip.coordinator = Some(node),
                        Err(_) => kip.find_at = now_i + Duration::from_millis(100),
                    }
                }
                Answer::Hb(r) => {
                    let Kind::Hb(id) = kind else { return };
                    let names = kip.names.clone();
                    let result = kip.state.handle_heartbeat_response(now_i, id, &r, &names);
                    if r.error_code != 0 {
                        self.run.log(format_args!(
                            "member {m}: ConsumerGroupHeartbeat → {} ({result:?})",
                            r.error_code
                        ));
                    }
                    if matches!(result, HeartbeatResult::FindCoordinator) {
                        kip.coordinator = None;
                    }
                }
                other => return self.reply_common(m, kind, other),
            }
            self.drive(m);
            return;
        }
        self.reply_common(m, kind, answer);
    }

    fn reply_common(&mut self, m: usize, kind: Kind, answer: Answer) {
        let now_i = self.run.clock.now();
        let Machine::Classic(state) = &mut self.members[m].state else {
            return self.reply_offsets(m, kind, answer);
        };
        match answer {
            Answer::Find(r) => state.handle_coordinator(
                now_i,
                r.map_err(|c| broker_error(ApiKey::FindCoordinator, c)),
            ),
            Answer::Join(r) => {
                self.run.log(format_args!(
                    "member {m}: JoinGroup → {} gen {} leader {} ({} members)",
                    r.error_code,
                    r.generation_id,
                    r.leader.as_str(),
                    r.members.len()
                ));
                state.handle_join(now_i, &r)
            }
            Answer::Sync(r) => {
                self.run
                    .log(format_args!("member {m}: SyncGroup → {}", r.error_code));
                state.handle_sync(now_i, &r)
            }
            Answer::Heartbeat(r) => {
                if r.error_code != 0 {
                    self.run
                        .log(format_args!("member {m}: Heartbeat → {}", r.error_code));
                }
                state.handle_heartbeat(now_i, &r)
            }
            Answer::Leave => state.handle_leave(now_i),
            other => return self.reply_offsets(m, kind, other),
        }
        self.drive(m);
    }

    fn reply_offsets(&mut self, m: usize, kind: Kind, answer: Answer) {
        match answer {
            Answer::Commit(r) => {
                let outcome = self.members[m]
                    .commit
                    .as_ref()
                    .map(|job| commit_outcome(&r, &job.offsets));
                match outcome {
                    Some(Ok(())) => {
                        self.run.log(format_args!("member {m}: commit ok"));
                        self.commit_done(m)
                    }
                    Some(Err(e)) => self.commit_failed(m, e.is_retriable(), &e.to_string()),
                    None => {}
                }
            }
            Answer::Fetch(Ok(offsets)) => {
                if let Some((tps, _, _)) = self.members[m].fetch.take() {
                    for tp in tps {
                        let committed = offsets.get(&tp).copied().unwrap_or(0);
                        let start = committed + i64::from(self.sc.skip_on_assign);
                        if let Some(p) = self.members[m].positions.get_mut(&tp) {
                            *p = Some(start);
                            self.checker.start(m, &tp, start);
                        }
                    }
                }
            }
            Answer::Fetch(Err(code)) => {
                self.fail_request(m, kind, &broker_error(ApiKey::OffsetFetch, code))
            }
            Answer::Error(code) => {
                let api = match kind {
                    Kind::Group(RequestKind::LeaveGroup) => ApiKey::LeaveGroup,
                    _ => ApiKey::OffsetCommit,
                };
                if kind == Kind::Commit {
                    let e = crate::state::group::commit::CommitError::from_code(code, None);
                    self.commit_failed(m, e.is_retriable(), &e.to_string());
                } else {
                    self.fail_request(m, kind, &broker_error(api, code));
                }
            }
            _ => {}
        }
        self.drive(m);
    }

    fn timeout(&mut self, to: ReplyTo) {
        let m = to.member;
        if to.conn != self.members[m].conn
            || !self.members[m].in_flight.contains_key(&to.req)
            || matches!(self.members[m].status, Status::Crashed | Status::Closed)
        {
            return;
        }
        self.cut(m, "request timed out");
    }

    fn pick_live(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.members.len())
            .filter(|i| {
                self.members[*i].status == Status::Alive && self.members[*i].closing.is_none()
            })
            .collect();
        (!live.is_empty()).then(|| live[self.run.index(live.len())])
    }

    fn live_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| {
                !matches!(m.status, Status::Crashed | Status::Closed) && m.closing.is_none()
            })
            .count()
    }

    fn fault(&mut self, fault: Fault) {
        let now = self.now();
        let target = self.pick_live();
        self.run.log(format_args!("fault {fault:?} on {target:?}"));
        for member in self
            .members
            .iter_mut()
            .filter(|_| !matches!(fault, Fault::QuietClose))
        {
            if let Some(clean) = &mut member.closing {
                *clean = false;
            }
        }
        match (fault, target) {
            (Fault::Cut, Some(m)) => self.cut(m, "fault"),
            (Fault::DropReply, Some(m)) => self.members[m].drop_next_reply = true,
            (Fault::Stall, Some(m)) => {
                let d = if self.run.chance(0.1) {
                    self.run
                        .duration_between(Duration::from_secs(61), Duration::from_secs(75))
                } else {
                    self.run
                        .duration_between(Duration::from_secs(1), Duration::from_secs(25))
                };
                self.members[m].status = Status::Stalled(now + d);
                self.run.log(format_args!("member {m} stalls for {d:?}"));
            }
            (Fault::Crash, Some(m)) if self.live_count() > 1 => {
                self.members[m].status = Status::Crashed;
                let tps: Vec<TopicPartition> = self.members[m].positions.keys().cloned().collect();
                self.give_up(m, &tps);
            }
            (Fault::Close, Some(m)) if self.live_count() > 1 => self.start_close(m),
            (Fault::NewMember, _) => self.add_member(),
            (Fault::QuietClose, Some(m)) if self.live_count() > 1 => self.start_close(m),
            (Fault::Move, _) => {
                let node = (self.coord.node + 1 + self.run.index(2) as i32) % NODES;
                let d = self
                    .run
                    .duration_between(Duration::from_millis(10), Duration::from_secs(3));
                self.run.log(format_args!(
                    "coordinator moves to {node}, loading for {d:?}"
                ));
                let answers = self.coord.move_to(node, now + d);
                self.kip.restart_sessions(now + d);
                self.answer(answers);
            }
            (Fault::Pause, _) => {
                let d = self
                    .run
                    .duration_between(Duration::from_millis(100), Duration::from_secs(15));
                self.run.log(format_args!("coordinator pauses for {d:?}"));
                self.coord.paused_until = now + d;
            }
            (Fault::Crash | Fault::Close | Fault::QuietClose, _)
            | (Fault::Cut | Fault::DropReply | Fault::Stall, None) => {}
        }
    }

    fn start_close(&mut self, m: usize) {
        self.run.log(format_args!("member {m} closes"));
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = self.members[m]
            .positions
            .iter()
            .filter_map(|(tp, p)| p.map(|p| (tp.clone(), OffsetAndMetadata::new(p))))
            .collect();
        let now = self.now();
        let member = &mut self.members[m];
        member.closing = Some(true);
        if !offsets.is_empty() && member.state.commit_generation().is_some() {
            member.commit = Some(CommitJob {
                offsets,
                purpose: Purpose::Close,
                deadline: now + REQUEST_TIMEOUT,
                in_flight: false,
                send_at: now,
                checked: false,
            });
        } else {
            member.commit = None;
            self.close_state(m);
        }
        self.drive(m);
    }

    /// The end: liveness, then the progress.
    fn judge(&mut self) {
        if self.checker.violation.is_some() {
            return;
        }
        let coord = &self.coord;
        let live: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].status == Status::Alive)
            .collect();
        let mut problems = Vec::new();
        let kip848 = self.sc.protocol == Protocol::Kip848;
        let (generation, members) = if kip848 {
            (self.kip.group_epoch, self.kip.member_ids())
        } else {
            (coord.generation, coord.member_ids())
        };
        if !kip848 && !coord.is_stable() {
            problems.push(format!("coordinator not stable: {}", coord.describe()));
        }
        let mut ids: Vec<String> = Vec::new();
        let mut owners: BTreeMap<TopicPartition, Vec<usize>> = BTreeMap::new();
        for &i in &live {
            let st = &self.members[i].state;
            let gen = st.commit_generation();
            if !st.is_stable() || gen.as_ref().map(|g| g.0) != Some(generation) {
                problems.push(format!(
                    "member {i} not stable in generation {generation} ({gen:?})"
                ));
            }
            if let Some(g) = gen {
                if kip848 {
                    let mut owned = st.assignment();
                    owned.sort();
                    let settled = self.kip.settled(&g.1);
                    if settled.as_ref().map(|s| &s.1) != Some(&owned) {
                        problems.push(format!(
                            "member {i} owns {owned:?}, the coordinator's target is {settled:?}"
                        ));
                    }
                }
                ids.push(g.1);
            }
            for tp in st.assignment() {
                owners.entry(tp).or_default().push(i);
            }
        }
        ids.sort();
        if ids != members {
            problems.push(format!(
                "live members {ids:?} but the coordinator has {members:?}"
            ));
        }
        for tp in self.totals.keys() {
            let o = owners.get(tp).cloned().unwrap_or_default();
            if o.len() != 1 {
                problems.push(format!("{tp:?} owned by {o:?}"));
            }
        }
        for (i, member) in self.members.iter().enumerate() {
            if member.closing == Some(true) && !member.member_id.is_empty() {
                let left = coord
                    .removals
                    .iter()
                    .any(|(id, _, why)| *id == member.member_id && *why == Removal::Leave);
                if !left {
                    problems.push(format!(
                        "member {i} closed cleanly but the coordinator never saw it leave \
                         (removals: {:?})",
                        coord
                            .removals
                            .iter()
                            .filter(|(id, _, _)| *id == member.member_id)
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        if let Some(first) = problems.first() {
            let detail = format!(
                "at the quiet-phase deadline: {first} (+{} more)",
                problems.len() - 1
            );
            self.fail_now("liveness", detail);
            return;
        }
        let committed = self.coord.offsets.clone();
        let totals = self.totals.clone();
        self.checker.final_progress(&totals, &committed);
    }
}

/// The topic ids KIP-848 assignments carry.
fn topic_ids() -> BTreeMap<String, Uuid> {
    BTreeMap::from([
        ("a".to_string(), Uuid::from_u128(0xa)),
        ("b".to_string(), Uuid::from_u128(0xb)),
    ])
}

fn error_answer(msg: &Msg, code: ResponseError) -> Answer {
    let c = code.code();
    match msg {
        Msg::Find => Answer::Find(Err(code)),
        Msg::Join(_) => Answer::Join(JoinGroupResponse::default().with_error_code(c)),
        Msg::Sync(_) => Answer::Sync(SyncGroupResponse::default().with_error_code(c)),
        Msg::Heartbeat(_) => Answer::Heartbeat(HeartbeatResponse::default().with_error_code(c)),
        Msg::Leave(_) | Msg::Commit(_) => Answer::Error(code),
        Msg::Fetch(_) => Answer::Fetch(Err(code)),
        Msg::Hb(_) => Answer::Hb(ConsumerGroupHeartbeatResponse::default().with_error_code(c)),
    }
}

/// Runs one seed of `sc`: the world is built from `run.rng`, driven to the end, judged.
pub(crate) fn simulate(run: &mut Run, sc: Scenario) -> Result<(), Violation> {
    let mut totals = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for (topic, n) in [("a", 3), ("b", 4)] {
        counts.insert(topic.to_string(), n);
        for p in 0..n {
            let total = run.between(50, 400) as i64;
            totals.insert(TopicPartition::new(topic, p), total);
        }
    }
    let node = run.index(NODES as usize) as i32;
    let mut kip = Kip848Group::new(totals.keys().cloned().collect(), topic_ids());
    kip.faults = sc.kip848;
    let mut world = World {
        run,
        sc,
        sched: Schedule::new(),
        coord: Coordinator::new(node, sc.coordinator),
        members: Vec::new(),
        totals,
        counts,
        checker: Checker::default(),
        next_req: 0,
        kip,
    };
    let initial = world.run.between(2, 5);
    for _ in 0..initial {
        world.add_member();
    }
    let faults = world.run.between(3, 14);
    for _ in 0..faults {
        let at = world
            .run
            .duration_between(Duration::from_secs(1), FAULT_PHASE);
        let kind = match world.run.index(10) {
            0 => Fault::Cut,
            1 => Fault::DropReply,
            2 => Fault::Stall,
            3 => Fault::Crash,
            4 => Fault::Close,
            5 | 6 => Fault::NewMember,
            7 => Fault::Move,
            8 => Fault::Pause,
            _ => Fault::Cut,
        };
        world.sched.at(at, Ev::Fault(kind));
    }
    if world.run.chance(0.5) {
        let at = world
            .run
            .duration_between(FAULT_PHASE + Duration::from_secs(5), FAULT_PHASE * 2);
        world.sched.at(at, Ev::Fault(Fault::QuietClose));
    }
    let mut steps: u64 = 0;
    while let Some(t) = world.sched.next_time() {
        if t > END || world.checker.violation.is_some() {
            break;
        }
        steps += 1;
        if steps > STEP_CAP {
            world.fail_now("liveness", format!("step cap {STEP_CAP} reached"));
            break;
        }
        let Some((at, ev)) = world.sched.pop() else {
            break;
        };
        world.run.clock.advance_to(at);
        match ev {
            Ev::Poll(m) => world.poll(m),
            Ev::Arrive { to, node, msg } => world.arrive(to, node, msg),
            Ev::Reply { to, answer } => world.reply(to, answer),
            Ev::Timeout(to) => world.timeout(to),
            Ev::Fault(f) => world.fault(f),
        }
        let now = world.now();
        let answers = world.coord.tick(now);
        world.answer(answers);
        if world.sc.protocol == Protocol::Kip848
            && now >= world.coord.paused_until
            && now >= world.coord.unavailable_until
        {
            world.kip.tick(now, &mut world.coord.removals);
        }
    }
    world.run.clock.advance_to(END);
    world.judge();
    let zombie = world.checker.zombie_records;
    let verdict = world.checker.violation.take();
    let desc = if sc.protocol == Protocol::Kip848 {
        world.kip.describe()
    } else {
        world.coord.describe()
    };
    world.run.log(format_args!(
        "end: {desc}; {zombie} records processed by removed members; verdict {verdict:?}"
    ));
    match verdict {
        Some(v) => Err(v),
        None => Ok(()),
    }
}
