// The Java client's side of benches/run-commit.sh: commit latency (a caught-up consumer,
// commitSync after every poll) and poll -> process -> commit throughput. Same CLI and JSON as
// kafkit-commit; what is measured: benches/src/commit_common.rs. Compiled with javac against
// the Kafka jars (scripts/kafka.sh libs) by the driver.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class CommitBench {
    static final int WARMUP_COMMITS = 10;
    static final Duration LATENCY_POLL = Duration.ofMillis(50);

    public static void main(String[] argv) throws Exception {
        String bootstrap = null, topic = null, group = null, protocol = "classic", mode = "latency";
        int commits = 200;
        long records = 0, timeoutS = 300;
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String v = argv[i + 1];
            switch (argv[i]) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--group": group = v; break;
                case "--protocol": protocol = v; break;
                case "--mode": mode = v; break;
                case "--commits": commits = Integer.parseInt(v); break;
                case "--records": records = Long.parseLong(v); break;
                case "--timeout": timeoutS = Long.parseLong(v); break;
                default: throw new IllegalArgumentException("unknown flag " + argv[i]);
            }
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("group.protocol", protocol);
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("fetch.min.bytes", "1");
        p.put("fetch.max.wait.ms", "500");
        p.put("max.poll.records", "500");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        long deadline = System.nanoTime() + timeoutS * 1_000_000_000L;
        List<Long> lat = new ArrayList<>();
        long[] tally = new long[2];
        long untimed = 0;
        long wallNs, cpuStart, cpuEnd;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            if (mode.equals("latency")) {
                c.subscribe(Collections.singletonList(topic));
                while (true) {
                    if (System.nanoTime() > deadline) throw new RuntimeException("join timed out");
                    poll(c, LATENCY_POLL, tally);
                    if (!c.assignment().isEmpty() && allPositions(c)) break;
                }
                for (int i = 0; i < WARMUP_COMMITS; i++) {
                    poll(c, LATENCY_POLL, tally);
                    c.commitSync();
                }
                cpuStart = cpu();
                long start = System.nanoTime();
                for (int i = 0; i < commits; i++) {
                    if (System.nanoTime() > deadline) throw new RuntimeException("timed out");
                    poll(c, LATENCY_POLL, tally);
                    long t = System.nanoTime();
                    c.commitSync();
                    lat.add(System.nanoTime() - t);
                }
                wallNs = System.nanoTime() - start;
                cpuEnd = cpu();
            } else {
                cpuStart = 0;
                long start = 0;
                c.subscribe(Collections.singletonList(topic));
                while (tally[0] < records) {
                    if (System.nanoTime() > deadline) {
                        System.err.println("CommitBench: timed out with " + tally[0] + " records");
                        break;
                    }
                    if (poll(c, Duration.ofMillis(500), tally) == 0) continue;
                    if (start == 0) {
                        start = System.nanoTime();
                        untimed = tally[0];
                        cpuStart = cpu();
                    }
                    long t = System.nanoTime();
                    c.commitSync();
                    lat.add(System.nanoTime() - t);
                }
                wallNs = start == 0 ? 0 : System.nanoTime() - start;
                cpuEnd = cpu();
            }
        }
        Collections.sort(lat);
        double mean = 0;
        for (long l : lat) mean += l / 1e6;
        mean = lat.isEmpty() ? Double.NaN : mean / lat.size();
        double wallS = wallNs / 1e9;
        System.out.printf(java.util.Locale.ROOT,
            "{\"client\":\"java\",\"mode\":\"%s\",\"protocol\":\"%s\",\"topic\":\"%s\","
                + "\"commits\":%d,\"commit_p50_ms\":%.3f,\"commit_p99_ms\":%.3f,"
                + "\"commit_mean_ms\":%.3f,\"commit_max_ms\":%.3f,\"records\":%d,\"bytes\":%d,"
                + "\"wall_s\":%.6f,\"records_per_s\":%.1f,\"commits_per_s\":%.2f,"
                + "\"cpu_s\":%.6f}%n",
            mode, protocol, topic, lat.size(), q(lat, 0.5), q(lat, 0.99), mean,
            lat.isEmpty() ? Double.NaN : lat.get(lat.size() - 1) / 1e6, tally[0], tally[1],
            wallS, (tally[0] - untimed) / wallS, lat.size() / wallS, (cpuEnd - cpuStart) / 1e9);
    }

    static int poll(KafkaConsumer<byte[], byte[]> c, Duration timeout, long[] tally) {
        ConsumerRecords<byte[], byte[]> rs = c.poll(timeout);
        for (ConsumerRecord<byte[], byte[]> r : rs) {
            tally[0]++;
            tally[1] += (r.key() == null ? 0 : r.key().length) + (r.value() == null ? 0 : r.value().length);
        }
        return rs.count();
    }

    static boolean allPositions(KafkaConsumer<byte[], byte[]> c) {
        for (TopicPartition tp : c.assignment()) {
            c.position(tp);
        }
        return true;
    }

    // Nearest rank, as commit_common.rs.
    static double q(List<Long> sorted, double q) {
        if (sorted.isEmpty()) return Double.NaN;
        int rank = (int) Math.ceil(q * sorted.size());
        rank = Math.max(1, Math.min(sorted.size(), rank));
        return sorted.get(rank - 1) / 1e6;
    }

    static long cpu() {
        java.lang.management.OperatingSystemMXBean os =
            java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime();
        }
        return 0;
    }
}
