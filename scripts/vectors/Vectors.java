// Vectors.java — the Java-client side of scripts/make-vectors.sh (a single-file program, run as
// `scripts/kafka.sh java scripts/vectors/Vectors.java ...`: Java 17 compiles it on the fly,
// against kafka-clients and jackson from the cached Kafka jars).
//
//   create BOOTSTRAP TOPIC...            create single-partition, RF 1 topics
//   produce BOOTSTRAP TOPIC CODEC FILE   produce the records of FILE with compression.type=CODEC
//   dump BOOTSTRAP TOPIC COUNT           print the first COUNT records of partition 0 as JSON lines
//
// FILE: one record a line, tab-separated: timestamp, key, value, headers, flush
//   key/value: "-" for null, else base64 of the bytes
//   headers:   comma-separated name:value, name base64 (UTF-8), value base64 or "-" for null
//   flush:     "1" to flush() after this record (ends the batch: the next records go to a new one)
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

public class Vectors {
  static byte[] b64(String s) {
    return s.equals("-") ? null : Base64.getDecoder().decode(s);
  }

  static String enc(byte[] b) {
    return b == null ? null : Base64.getEncoder().encodeToString(b);
  }

  public static void main(String[] a) throws Exception {
    String bs = a[1];
    switch (a[0]) {
      case "create": {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(p)) {
          List<NewTopic> ts = new ArrayList<>();
          for (int i = 2; i < a.length; i++) ts.add(new NewTopic(a[i], 1, (short) 1));
          admin.createTopics(ts).all().get();
        }
        break;
      }
      case "produce": {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        p.put("compression.type", a[3]);
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        // Batches end only at flush() (the flush flag / the end of FILE): deterministic batching.
        p.put("linger.ms", "60000");
        p.put("batch.size", "1048576");
        p.put("key.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        p.put("value.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        List<java.util.concurrent.Future<?>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
          for (String line : Files.readAllLines(Path.of(a[4]), StandardCharsets.UTF_8)) {
            if (line.isEmpty()) continue;
            String[] f = line.split("\t", -1);
            List<Header> hs = new ArrayList<>();
            if (!f[3].isEmpty()) {
              for (String h : f[3].split(",", -1)) {
                String[] kv = h.split(":", -1);
                hs.add(new RecordHeader(new String(b64(kv[0]), StandardCharsets.UTF_8), b64(kv[1])));
              }
            }
            // Do not wait for each ack (that would make one batch per record): records
            // accumulate until the flush flag (or the end) and go out as one batch.
            futures.add(prod.send(new ProducerRecord<>(a[2], 0, Long.parseLong(f[0]), b64(f[1]), b64(f[2]), hs)));
            if (f[4].equals("1")) prod.flush();
          }
          prod.flush();
          for (java.util.concurrent.Future<?> fu : futures) fu.get(); // surface any send error
        }
        break;
      }
      case "dump": {
        Properties p = new Properties();
        p.put("bootstrap.servers", bs);
        p.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("enable.auto.commit", "false");
        p.put("check.crcs", "true");
        p.put("auto.offset.reset", "earliest");
        int want = Integer.parseInt(a[3]);
        ObjectMapper om = new ObjectMapper();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
          TopicPartition tp = new TopicPartition(a[2], 0);
          c.assign(List.of(tp));
          // An explicit seek: with seekToBeginning (lazy) the vec-java-zstd dump once came back
          // empty with position 16 (reset to latest?); offset 0 is the log start of a new topic.
          c.seek(tp, 0);
          int got = 0;
          long deadline = System.currentTimeMillis() + 30000;
          while (got < want && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
              Map<String, Object> m = new LinkedHashMap<>();
              m.put("offset", r.offset());
              m.put("timestamp", r.timestamp());
              m.put("timestamp_type", r.timestampType().name);
              m.put("key", enc(r.key()));
              m.put("value", enc(r.value()));
              List<List<String>> hs = new ArrayList<>();
              for (Header h : r.headers()) hs.add(Arrays.asList(h.key(), enc(h.value())));
              m.put("headers", hs);
              System.out.println(om.writeValueAsString(m));
              got++;
            }
          }
          if (got < want)
            throw new RuntimeException("only " + got + " of " + want + " records; position "
                + c.position(tp) + ", end offsets " + c.endOffsets(List.of(tp)));
        }
        break;
      }
      default:
        throw new IllegalArgumentException(a[0]);
    }
  }
}
