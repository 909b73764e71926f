// Generates assignor test vectors by running the Java client's own assignors.
//
//   java -cp kafka-clients-4.1.0.jar:slf4j-api-1.7.36.jar GenAssignorVectors.java > vectors.json
//
// Each scenario lists members (id, optional group.instance.id, topics, owned partitions,
// generation) and partition counts; the output holds what "range", "roundrobin" and
// "cooperative-sticky" assign. Cooperative-sticky scenarios come in chains: round 1 starts
// from nothing, later rounds change membership and feed the previous result back as owned
// partitions (generation = round number), as a real group would.
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.common.TopicPartition;

public class GenAssignorVectors {
    static final class M {
        String id; String instance; List<String> topics; List<TopicPartition> owned = new ArrayList<>(); int generation = -1;
        M(String id, String instance, List<String> topics) { this.id = id; this.instance = instance; this.topics = topics; }
    }

    static StringBuilder out = new StringBuilder();
    static boolean first = true;

    static String q(String s) { return s == null ? "null" : "\"" + s + "\""; }

    static Map<String, List<TopicPartition>> run(ConsumerPartitionAssignor a, Map<String, Integer> allCounts, List<M> ms) {
        // As AbstractPartitionAssignor.assign(Cluster, ...) does: only subscribed topics with
        // partitions reach the assignor.
        Map<String, Integer> counts = new HashMap<>();
        for (M m : ms) for (String t : m.topics) if (allCounts.getOrDefault(t, 0) > 0) counts.put(t, allCounts.get(t));
        Map<String, Subscription> subs = new HashMap<>();
        for (M m : ms) {
            Subscription s = new Subscription(m.topics, null, m.owned, m.generation, Optional.empty());
            s.setGroupInstanceId(Optional.ofNullable(m.instance));
            subs.put(m.id, s);
        }
        if (a instanceof RangeAssignor) return ((RangeAssignor) a).assign(counts, subs);
        if (a instanceof RoundRobinAssignor) return ((RoundRobinAssignor) a).assign(counts, subs);
        return ((CooperativeStickyAssignor) a).assign(counts, subs);
    }

    static String tps(Collection<TopicPartition> l) {
        List<TopicPartition> s = new ArrayList<>(l);
        s.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        StringJoiner j = new StringJoiner(",", "[", "]");
        for (TopicPartition tp : s) j.add("[" + q(tp.topic()) + "," + tp.partition() + "]");
        return j.toString();
    }

    static void emit(String name, String assignor, Map<String, Integer> counts, List<M> ms, Map<String, List<TopicPartition>> result) {
        StringBuilder b = new StringBuilder();
        b.append("{\"name\":").append(q(name)).append(",\"assignor\":").append(q(assignor)).append(",\"partitions\":{");
        StringJoiner cj = new StringJoiner(",");
        for (Map.Entry<String, Integer> e : new TreeMap<>(counts).entrySet()) cj.add(q(e.getKey()) + ":" + e.getValue());
        b.append(cj).append("},\"members\":[");
        StringJoiner mj = new StringJoiner(",");
        for (M m : ms) {
            StringJoiner tj = new StringJoiner(",", "[", "]");
            for (String t : m.topics) tj.add(q(t));
            mj.add("{\"id\":" + q(m.id) + ",\"instance\":" + q(m.instance) + ",\"topics\":" + tj
                + ",\"owned\":" + tps(m.owned) + ",\"generation\":" + m.generation + "}");
        }
        b.append(mj).append("],\"expected\":{");
        StringJoiner rj = new StringJoiner(",");
        for (Map.Entry<String, List<TopicPartition>> e : new TreeMap<>(result).entrySet()) rj.add(q(e.getKey()) + ":" + tps(e.getValue()));
        b.append(rj).append("}}");
        out.append(first ? "\n" : ",\n").append(b);
        first = false;
    }

    static void eager(String name, Map<String, Integer> counts, List<M> ms) {
        emit(name, "range", counts, ms, run(new RangeAssignor(), counts, ms));
        emit(name, "roundrobin", counts, ms, run(new RoundRobinAssignor(), counts, ms));
    }

    static List<String> randomTopics(Random r, List<String> all) {
        List<String> t = new ArrayList<>();
        for (String s : all) if (r.nextInt(3) > 0) t.add(s);
        if (t.isEmpty()) t.add(all.get(r.nextInt(all.size())));
        Collections.shuffle(t, r);
        return t;
    }

    // A chain of cooperative rebalances; each round's result becomes the next round's owned set.
    static void chain(String name, Map<String, Integer> counts, List<List<M>> rounds) {
        Map<String, List<TopicPartition>> prev = new HashMap<>();
        int gen = 0;
        for (List<M> ms : rounds) {
            gen++;
            for (M m : ms) {
                m.owned = new ArrayList<>(prev.getOrDefault(m.id, List.of()));
                m.generation = prev.containsKey(m.id) ? gen - 1 : -1;
            }
            Map<String, List<TopicPartition>> res = run(new CooperativeStickyAssignor(), counts, ms);
            emit(name + "/round" + gen, "cooperative-sticky", counts, ms, res);
            prev = res;
        }
    }

    public static void main(String[] args) {
        out.append("[");
        // Hand-written eager scenarios.
        eager("one-topic-even", Map.of("t", 4), List.of(new M("c1", null, List.of("t")), new M("c0", null, List.of("t"))));
        eager("one-topic-uneven", Map.of("t", 7), List.of(new M("b", null, List.of("t")), new M("a", null, List.of("t")), new M("c", null, List.of("t"))));
        eager("more-members-than-partitions", Map.of("t", 2), List.of(new M("a", null, List.of("t")), new M("b", null, List.of("t")), new M("c", null, List.of("t"))));
        eager("two-topics-range-skew", Map.of("t1", 3, "t2", 3), List.of(new M("a", null, List.of("t1", "t2")), new M("b", null, List.of("t1", "t2"))));
        eager("disjoint-subscriptions", Map.of("x", 3, "y", 2), List.of(new M("a", null, List.of("x")), new M("b", null, List.of("y")), new M("c", null, List.of("x", "y"))));
        eager("static-members-sort-by-instance", Map.of("t", 5, "u", 3), List.of(
            new M("a-dyn", null, List.of("t", "u")), new M("z-member", "inst-1", List.of("t", "u")),
            new M("b-member", "inst-2", List.of("t", "u")), new M("0-dyn", null, List.of("t"))));
        eager("unknown-topic-and-empty", Map.of("t", 3, "empty", 0), List.of(new M("a", null, List.of("t", "missing", "empty")), new M("b", null, List.of("t"))));
        eager("no-partitions", Map.of(), List.of(new M("a", null, List.of("t"))));

        // Random eager scenarios.
        Random r = new Random(20261123L);
        List<String> topics = List.of("alpha", "beta", "gamma", "delta");
        for (int i = 0; i < 60; i++) {
            Map<String, Integer> counts = new HashMap<>();
            for (String t : topics) if (r.nextInt(5) > 0) counts.put(t, r.nextInt(9));
            int n = 1 + r.nextInt(6);
            List<M> ms = new ArrayList<>();
            for (int k = 0; k < n; k++) {
                String id = "consumer-" + Integer.toHexString(r.nextInt(1 << 16)) + "-" + k;
                String inst = r.nextInt(4) == 0 ? "instance-" + r.nextInt(100) + "-" + k : null;
                ms.add(new M(id, inst, randomTopics(r, topics)));
            }
            eager("random-" + i, counts, ms);
        }

        // Cooperative-sticky chains, same subscriptions: joins and leaves.
        chain("coop-join", Map.of("t", 6, "u", 3), List.of(
            List.of(new M("a", null, List.of("t", "u"))),
            List.of(new M("a", null, List.of("t", "u")), new M("b", null, List.of("t", "u"))),
            List.of(new M("a", null, List.of("t", "u")), new M("b", null, List.of("t", "u"))),
            List.of(new M("a", null, List.of("t", "u")), new M("b", null, List.of("t", "u")), new M("c", null, List.of("t", "u"))),
            List.of(new M("a", null, List.of("t", "u")), new M("b", null, List.of("t", "u")), new M("c", null, List.of("t", "u")))));
        chain("coop-leave", Map.of("t", 7), List.of(
            List.of(new M("a", null, List.of("t")), new M("b", null, List.of("t")), new M("c", null, List.of("t"))),
            List.of(new M("a", null, List.of("t")), new M("c", null, List.of("t"))),
            List.of(new M("a", null, List.of("t")), new M("c", null, List.of("t")), new M("d", null, List.of("t"))),
            List.of(new M("a", null, List.of("t")), new M("c", null, List.of("t")), new M("d", null, List.of("t")))));
        // Differing subscriptions (Java's general algorithm).
        chain("coop-general", Map.of("t", 4, "u", 4), List.of(
            List.of(new M("a", null, List.of("t")), new M("b", null, List.of("t", "u"))),
            List.of(new M("a", null, List.of("t")), new M("b", null, List.of("t", "u")), new M("c", null, List.of("u"))),
            List.of(new M("a", null, List.of("t")), new M("b", null, List.of("t", "u")), new M("c", null, List.of("u")))));
        for (int i = 0; i < 25; i++) {
            Map<String, Integer> counts = new HashMap<>();
            for (String t : topics) counts.put(t, r.nextInt(7));
            boolean same = i % 2 == 0;
            List<String> shared = randomTopics(r, topics);
            List<M> pool = new ArrayList<>();
            for (int k = 0; k < 6; k++) pool.add(new M("member-" + (char) ('a' + k), null, same ? shared : randomTopics(r, topics)));
            List<List<M>> rounds = new ArrayList<>();
            for (int round = 0; round < 4; round++) {
                List<M> ms = new ArrayList<>();
                for (M m : pool) if (r.nextInt(3) > 0) ms.add(new M(m.id, null, m.topics));
                if (ms.isEmpty()) ms.add(new M(pool.get(0).id, null, pool.get(0).topics));
                rounds.add(ms);
                rounds.add(ms.stream().map(m -> new M(m.id, null, m.topics)).collect(java.util.stream.Collectors.toList()));
            }
            chain((same ? "coop-random-same-" : "coop-random-mixed-") + i, counts, rounds);
        }
        // Bigger groups (HashMap tables beyond 16 slots), more topics.
        List<String> many = List.of("t0", "t1", "t2", "t3", "t4", "t5");
        for (int i = 0; i < 12; i++) {
            Map<String, Integer> counts = new HashMap<>();
            for (String t : many) counts.put(t, r.nextInt(12));
            boolean same = i % 3 == 0;
            List<String> shared = randomTopics(r, many);
            List<M> pool = new ArrayList<>();
            int size = 8 + r.nextInt(12);
            for (int k = 0; k < size; k++) pool.add(new M("consumer-" + k + "-" + Integer.toHexString(r.nextInt(1 << 20)), null, same ? shared : randomTopics(r, many)));
            List<List<M>> rounds = new ArrayList<>();
            for (int round = 0; round < 3; round++) {
                List<M> ms = new ArrayList<>();
                for (M m : pool) if (r.nextInt(4) > 0) ms.add(new M(m.id, null, m.topics));
                if (ms.isEmpty()) ms.add(new M(pool.get(0).id, null, pool.get(0).topics));
                rounds.add(ms);
                rounds.add(ms.stream().map(m -> new M(m.id, null, m.topics)).collect(java.util.stream.Collectors.toList()));
            }
            chain((same ? "coop-big-same-" : "coop-big-mixed-") + i, counts, rounds);
        }
        // Conflicting and stale claims.
        for (boolean same : new boolean[] {true, false}) {
            Map<String, Integer> counts = Map.of("t", 6, "u", 2);
            List<String> tb = same ? List.of("t", "u") : List.of("t");
            M a = new M("a", null, List.of("t", "u")); a.owned = List.of(new TopicPartition("t", 0), new TopicPartition("t", 1), new TopicPartition("u", 0)); a.generation = 5;
            M b = new M("b", null, tb); b.owned = List.of(new TopicPartition("t", 1), new TopicPartition("t", 2)); b.generation = 5;
            M c = new M("c", null, List.of("t", "u")); c.owned = List.of(new TopicPartition("t", 2), new TopicPartition("t", 3), new TopicPartition("u", 1)); c.generation = 4;
            M d = new M("d", null, List.of("t", "u"));
            List<M> ms = List.of(a, b, c, d);
            emit("coop-conflicts-" + (same ? "same" : "mixed"), "cooperative-sticky", counts, ms, run(new CooperativeStickyAssignor(), counts, ms));
        }
        out.append("\n]\n");
        System.out.print(out);
    }
}
