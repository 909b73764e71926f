//! Cooperative-sticky's assignment when subscriptions differ: the algorithm of Java's
//! `AbstractStickyAssignor.GeneralAssignmentBuilder` (without rack awareness), including the
//! iteration orders of the Java collections that decide ties (`HashMap` of members, `HashSet`
//! of moved partitions), so that the result is the one a Java leader would compute.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::assignor::{java_cmp, Member};
use super::cooperative_sticky::{member_data_generation, Owned, DEFAULT_GENERATION};
use super::protocol::TopicPartition;

/// Java's `String.hashCode`.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Java's `TopicPartition.hashCode`.
fn java_tp_hash(tp: &TopicPartition) -> i32 {
    31i32
        .wrapping_add(tp.partition)
        .wrapping_mul(31)
        .wrapping_add(java_string_hash(&tp.topic))
}

/// The bucket a `HashMap` with `capacity` slots puts a key of hash `h` in.
fn bucket(h: i32, capacity: usize) -> u32 {
    let h = h as u32;
    (h ^ (h >> 16)) & u32::try_from(capacity.saturating_sub(1)).unwrap_or(u32::MAX)
}

/// A `HashSet<TopicPartition>` that knows which element Java's iterator yields first.
#[derive(Debug, Clone)]
struct JavaHashSet {
    items: Vec<(TopicPartition, u64)>,
    capacity: usize,
    seq: u64,
}

impl Default for JavaHashSet {
    /// An empty set with Java's default table of 16 slots.
    fn default() -> Self {
        Self {
            items: Vec::new(),
            capacity: 16,
            seq: 0,
        }
    }
}

impl JavaHashSet {
    fn insert(&mut self, tp: TopicPartition) {
        if self.items.iter().any(|(x, _)| *x == tp) {
            return;
        }
        self.seq += 1;
        self.items.push((tp, self.seq));
        // Java grows the table once the size exceeds three quarters of it, never shrinks it.
        while self.items.len() > self.capacity / 4 * 3 {
            self.capacity = self.capacity.saturating_mul(2);
        }
    }

    fn remove(&mut self, tp: &TopicPartition) {
        self.items.retain(|(x, _)| x != tp);
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn first(&self) -> Option<&TopicPartition> {
        self.items
            .iter()
            .min_by_key(|(tp, seq)| (bucket(java_tp_hash(tp), self.capacity), *seq))
            .map(|(tp, _)| tp)
    }
}

type Pair = (String, String);

/// Java's `PartitionMovements`, as far as the assignment needs it.
#[derive(Debug, Default)]
struct Movements {
    by_topic: HashMap<String, HashMap<Pair, JavaHashSet>>,
    moves: HashMap<TopicPartition, Pair>,
}

impl Movements {
    fn remove_record(&mut self, tp: &TopicPartition) -> Option<Pair> {
        let pair = self.moves.remove(tp)?;
        if let Some(pairs) = self.by_topic.get_mut(&tp.topic) {
            if let Some(set) = pairs.get_mut(&pair) {
                set.remove(tp);
                if set.is_empty() {
                    pairs.remove(&pair);
                }
            }
            if pairs.is_empty() {
                self.by_topic.remove(&tp.topic);
            }
        }
        Some(pair)
    }

    fn add_record(&mut self, tp: TopicPartition, pair: Pair) {
        self.moves.insert(tp.clone(), pair.clone());
        self.by_topic
            .entry(tp.topic.clone())
            .or_default()
            .entry(pair)
            .or_default()
            .insert(tp);
    }

    fn move_partition(&mut self, tp: &TopicPartition, old: &str, new: &str) {
        if self.moves.contains_key(tp) {
            if let Some((src, _)) = self.remove_record(tp) {
                if src != new {
                    self.add_record(tp.clone(), (src, new.to_string()));
                }
            }
        } else {
            self.add_record(tp.clone(), (old.to_string(), new.to_string()));
        }
    }

    fn actual_partition_to_move(
        &self,
        tp: &TopicPartition,
        old: &str,
        new: &str,
    ) -> TopicPartition {
        let Some(pairs) = self.by_topic.get(&tp.topic) else {
            return tp.clone();
        };
        let old = self.moves.get(tp).map_or(old, |(src, _)| src.as_str());
        match pairs.get(&(new.to_string(), old.to_string())) {
            Some(set) => set.first().cloned().unwrap_or_else(|| tp.clone()),
            None => tp.clone(),
        }
    }
}

struct Builder<'a> {
    counts: &'a BTreeMap<String, i32>,
    total: usize,
    topic_consumers: BTreeMap<String, Vec<String>>,
    consumer_topics: HashMap<String, Vec<String>>,
    current: BTreeMap<String, Vec<TopicPartition>>,
    owner: HashMap<TopicPartition, String>,
    active: BTreeSet<String>,
    movements: Movements,
}

impl Builder<'_> {
    fn size(&self, member: &str) -> usize {
        self.current.get(member).map_or(0, Vec::len)
    }

    /// Java's `sortedCurrentSubscriptions`: by assignment size, then member id.
    fn sorted(&self) -> Vec<String> {
        let mut v: Vec<String> = self.active.iter().cloned().collect();
        v.sort_by(|a, b| self.size(a).cmp(&self.size(b)).then_with(|| java_cmp(a, b)));
        v
    }

    fn subscribes(&self, member: &str, topic: &str) -> bool {
        self.consumer_topics
            .get(member)
            .is_some_and(|t| t.iter().any(|x| x == topic))
    }

    fn max_size(&self, member: &str) -> usize {
        let topics = self
            .consumer_topics
            .get(member)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if topics.len() == self.counts.len() {
            self.total
        } else {
            topics
                .iter()
                .map(|t| {
                    self.counts
                        .get(t)
                        .map_or(0, |c| usize::try_from(*c).unwrap_or(0))
                })
                .sum()
        }
    }

    fn potential(&self, topic: &str) -> usize {
        self.topic_consumers.get(topic).map_or(0, Vec::len)
    }

    fn is_balanced(&self) -> bool {
        let sorted = self.sorted();
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return true;
        };
        if self.size(first) + 1 >= self.size(last) {
            return true;
        }
        for consumer in &sorted {
            let count = self.size(consumer);
            if count == self.max_size(consumer) {
                continue;
            }
            let mine: HashSet<&TopicPartition> =
                self.current.get(consumer).into_iter().flatten().collect();
            for topic in self.consumer_topics.get(consumer).into_iter().flatten() {
                for p in 0..self.counts.get(topic).copied().unwrap_or(0) {
                    let tp = TopicPartition::new(topic.clone(), p);
                    if mine.contains(&tp) {
                        continue;
                    }
                    let Some(other) = self.owner.get(&tp) else {
                        continue;
                    };
                    if !self.current.contains_key(other) {
                        continue;
                    }
                    if count + 1 < self.size(other) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn assign_to_first_eligible(&mut self, tp: &TopicPartition) {
        let target = self
            .sorted()
            .into_iter()
            .find(|c| self.subscribes(c, &tp.topic));
        if let Some(c) = target {
            self.current.entry(c.clone()).or_default().push(tp.clone());
            self.owner.insert(tp.clone(), c);
        }
    }

    fn can_participate(&self, consumer: &str) -> bool {
        let size = self.size(consumer);
        if size < self.max_size(consumer) {
            return true;
        }
        self.current
            .get(consumer)
            .into_iter()
            .flatten()
            .any(|tp| self.potential(&tp.topic) >= 2)
    }

    fn process_movement(&mut self, tp: &TopicPartition, new: &str) {
        let Some(old) = self.owner.get(tp).cloned() else {
            return;
        };
        self.movements.move_partition(tp, &old, new);
        if let Some(list) = self.current.get_mut(&old) {
            if let Some(i) = list.iter().position(|x| x == tp) {
                list.remove(i);
            }
        }
        self.current
            .entry(new.to_string())
            .or_default()
            .push(tp.clone());
        self.owner.insert(tp.clone(), new.to_string());
    }

    fn reassign_to(&mut self, tp: &TopicPartition, new: &str) {
        let Some(old) = self.owner.get(tp).cloned() else {
            return;
        };
        let actual = self.movements.actual_partition_to_move(tp, &old, new);
        self.process_movement(&actual, new);
    }

    fn reassign(&mut self, tp: &TopicPartition) {
        let target = self
            .sorted()
            .into_iter()
            .find(|c| self.subscribes(c, &tp.topic));
        if let Some(new) = target {
            self.reassign_to(tp, &new);
        }
    }

    fn perform_reassignments(
        &mut self,
        partitions: &[TopicPartition],
        prev: &HashMap<TopicPartition, (String, i32)>,
    ) -> bool {
        let mut performed = false;
        loop {
            let mut modified = false;
            for tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let Some(consumer) = self.owner.get(tp).cloned() else {
                    continue;
                };
                if !self.current.contains_key(&consumer) {
                    continue;
                }
                if let Some((prev_owner, _)) = prev.get(tp) {
                    // Java would also hand it back to an old owner that no longer subscribes to
                    // the topic; we do not.
                    if self.current.contains_key(prev_owner)
                        && self.subscribes(prev_owner, &tp.topic)
                        && self.size(&consumer) > self.size(prev_owner) + 1
                    {
                        let prev_owner = prev_owner.clone();
                        self.reassign_to(tp, &prev_owner);
                        performed = true;
                        modified = true;
                        continue;
                    }
                }
                let others = self
                    .topic_consumers
                    .get(&tp.topic)
                    .cloned()
                    .unwrap_or_default();
                let imbalanced = others.iter().any(|o| {
                    self.current.contains_key(o) && self.size(&consumer) > self.size(o) + 1
                });
                if imbalanced {
                    self.reassign(tp);
                    performed = true;
                    modified = true;
                }
            }
            if !modified {
                return performed;
            }
        }
    }
}

fn balance_score(assignment: &BTreeMap<String, Vec<TopicPartition>>) -> usize {
    let sizes: Vec<usize> = assignment.values().map(Vec::len).collect();
    let mut score = 0;
    for (i, a) in sizes.iter().enumerate() {
        for b in &sizes[i + 1..] {
            score += a.abs_diff(*b);
        }
    }
    score
}

/// Runs the general algorithm. `hash_order` is the members in Java `HashMap` order.
pub(crate) fn assign(
    hash_order: &[&Member],
    counts: &BTreeMap<String, i32>,
    owned: Owned,
    max_generation: i32,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut topic_consumers: BTreeMap<String, Vec<String>> =
        counts.keys().map(|t| (t.clone(), Vec::new())).collect();
    let mut consumer_topics = HashMap::new();
    for m in hash_order {
        let mut topics = Vec::new();
        for t in &m.subscription.topics {
            if let Some(list) = topic_consumers.get_mut(t) {
                topics.push(t.clone());
                list.push(m.member_id.clone());
            }
        }
        consumer_topics.insert(m.member_id.clone(), topics);
    }
    let total = counts
        .values()
        .map(|c| usize::try_from(*c).unwrap_or(0))
        .sum();

    // Partitions of topics ordered by how few members could take them, then by name.
    let mut sorted_topics: Vec<&String> = counts.keys().collect();
    sorted_topics.sort_by(|a, b| {
        let pa = topic_consumers.get(*a).map_or(0, Vec::len);
        let pb = topic_consumers.get(*b).map_or(0, Vec::len);
        pa.cmp(&pb).then_with(|| java_cmp(a, b))
    });
    let mut sorted_all: Vec<TopicPartition> = sorted_topics
        .iter()
        .flat_map(|t| {
            (0..counts.get(*t).copied().unwrap_or(0)).map(move |p| TopicPartition::new(*t, p))
        })
        .collect();

    let mut current = owned.by_member;
    for m in hash_order {
        current.entry(m.member_id.clone()).or_default();
    }
    let mut owner = HashMap::new();
    for (m, list) in &current {
        for tp in list {
            owner.insert(tp.clone(), m.clone());
        }
    }

    // Partitions owned in an older generation, to prefer giving back to their old owner.
    let mut prev: HashMap<TopicPartition, (String, i32)> = HashMap::new();
    for m in hash_order {
        let generation = member_data_generation(m);
        let generation = match generation {
            Some(g) if g < max_generation => g,
            None if max_generation > DEFAULT_GENERATION => DEFAULT_GENERATION,
            _ => continue,
        };
        for tp in m.subscription.owned() {
            match prev.get(&tp) {
                Some((_, g)) if generation <= *g => {}
                _ => {
                    prev.insert(tp, (m.member_id.clone(), generation));
                }
            }
        }
    }

    // Keep owned partitions of topics the member still subscribes to.
    let mut revocation_required = false;
    let mut assigned = HashSet::new();
    for (m, list) in current.iter_mut() {
        let topics = consumer_topics.get(m).cloned().unwrap_or_default();
        list.retain(|tp| {
            let keep = topics.contains(&tp.topic);
            if keep {
                assigned.insert(tp.clone());
            } else {
                revocation_required = true;
                owner.remove(tp);
            }
            keep
        });
    }
    let mut unassigned: Vec<TopicPartition> = sorted_all
        .iter()
        .filter(|tp| !assigned.contains(*tp))
        .cloned()
        .collect();

    let mut b = Builder {
        counts,
        total,
        active: current.keys().cloned().collect(),
        topic_consumers,
        consumer_topics,
        current,
        owner,
        movements: Movements::default(),
    };

    let initializing = b.sorted().last().is_none_or(|last| b.size(last) == 0);
    for tp in &unassigned {
        if b.potential(&tp.topic) == 0 {
            continue;
        }
        b.assign_to_first_eligible(tp);
    }

    let fixed_topics: HashSet<String> = b
        .topic_consumers
        .iter()
        .filter(|(_, c)| c.len() < 2)
        .map(|(t, _)| t.clone())
        .collect();
    sorted_all.retain(|tp| !fixed_topics.contains(&tp.topic));
    unassigned.retain(|tp| !fixed_topics.contains(&tp.topic));

    let mut fixed = Vec::new();
    let members: Vec<String> = b.current.keys().cloned().collect();
    for m in members {
        if !b.can_participate(&m) {
            b.active.remove(&m);
            if let Some(list) = b.current.remove(&m) {
                fixed.push((m, list));
            }
        }
    }

    let pre_balance = b.current.clone();
    let pre_owner = b.owner.clone();
    if !revocation_required {
        b.perform_reassignments(&unassigned, &prev);
    }
    let performed = b.perform_reassignments(&sorted_all, &prev);
    if !initializing && performed && balance_score(&b.current) >= balance_score(&pre_balance) {
        b.current = pre_balance;
        b.owner = pre_owner;
    }
    for (m, list) in fixed {
        b.current.insert(m, list);
    }
    b.current
}
