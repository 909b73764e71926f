// The Java client's side of benches/run-transactions.sh: transactional throughput and the
// per-transaction latency (begin -> commitTransaction returned). Same CLI and JSON as
// kafkit-txn; what is measured: benches/src/txn_common.rs. Compiled with javac against the
// Kafka jars (scripts/kafka.sh libs) by the driver. CPU is the JVM process's
// (getProcessCpuTime: user + system together, reported as cpu_user_s) over the timed
// transactions.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TxnBench {
    public static void main(String[] argv) throws Exception {
        String bootstrap = null, topic = null, payloadFile = null, id = null;
        long txnSize = 0, transactions = 0, warmup = 2;
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String v = argv[i + 1];
            switch (argv[i]) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--payload-file": payloadFile = v; break;
                case "--txn-size": txnSize = Long.parseLong(v); break;
                case "--transactions": transactions = Long.parseLong(v); break;
                case "--transactional-id": id = v; break;
                case "--warmup-txns": warmup = Long.parseLong(v); break;
                default: throw new IllegalArgumentException("unknown flag " + argv[i]);
            }
        }
        List<byte[]> payloads = new ArrayList<>();
        for (String line : Files.readAllLines(Paths.get(payloadFile), StandardCharsets.UTF_8)) {
            if (!line.isEmpty()) payloads.add(line.getBytes(StandardCharsets.UTF_8));
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", id);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "5");
        p.put("batch.size", "16384");
        p.put("compression.type", "none");
        p.put("buffer.memory", "33554432");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        List<Long> lat = new ArrayList<>();
        long failed = 0;
        long[] next = new long[1];
        long wallNs, cpuStart, cpuEnd;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (long i = 0; i < warmup; i++) {
                transaction(producer, topic, payloads, next, txnSize);
            }
            cpuStart = cpu();
            long start = System.nanoTime();
            for (long i = 0; i < transactions; i++) {
                try {
                    lat.add(transaction(producer, topic, payloads, next, txnSize));
                } catch (RuntimeException e) {
                    if (failed++ < 5) System.err.println("TxnBench: transaction failed: " + e);
                    producer.abortTransaction();
                }
            }
            wallNs = System.nanoTime() - start;
            cpuEnd = cpu();
        }
        Collections.sort(lat);
        double mean = 0;
        for (long l : lat) mean += l / 1e6;
        mean = lat.isEmpty() ? Double.NaN : mean / lat.size();
        double wallS = wallNs / 1e9;
        long records = lat.size() * txnSize;
        double cpuS = (cpuEnd - cpuStart) / 1e9;
        System.out.printf(java.util.Locale.ROOT,
            "{\"client\":\"java\",\"topic\":\"%s\",\"size\":%d,\"txn_size\":%d,"
                + "\"transactions\":%d,\"failed\":%d,\"records\":%d,\"wall_s\":%.6f,"
                + "\"records_per_s\":%.1f,\"txn_per_s\":%.2f,\"cpu_user_s\":%.6f,"
                + "\"cpu_sys_s\":0,\"cpu_s_per_million\":%.6f,\"txn_p50_ms\":%.3f,"
                + "\"txn_p99_ms\":%.3f,\"txn_mean_ms\":%.3f,\"txn_max_ms\":%.3f}%n",
            topic, payloads.get(0).length, txnSize, lat.size(), failed, records, wallS,
            records / wallS, lat.size() / wallS, cpuS,
            records > 0 ? cpuS * 1e6 / records : Double.NaN, q(lat, 0.5), q(lat, 0.99), mean,
            lat.isEmpty() ? Double.NaN : lat.get(lat.size() - 1) / 1e6);
    }

    // One transaction: begin, txnSize sends, commit (flushes first); its duration in ns.
    static long transaction(KafkaProducer<byte[], byte[]> producer, String topic,
                            List<byte[]> payloads, long[] next, long txnSize) {
        long t = System.nanoTime();
        producer.beginTransaction();
        for (long i = 0; i < txnSize; i++) {
            byte[] payload = payloads.get((int) (next[0]++ % payloads.size()));
            producer.send(new ProducerRecord<>(topic, payload));
        }
        producer.commitTransaction();
        return System.nanoTime() - t;
    }

    // Nearest rank, as txn_common.rs.
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
