// Writes transactions with the Java client for kafkit's read_committed test (tests/suites/consumer.rs).
//
// Usage: TxnWriter BOOTSTRAP TOPIC TRANSACTIONAL_ID [open]
// Into partition 0 of TOPIC: a committed transaction ("c1-0".."c1-4"), an aborted one
// ("a-0".."a-4"), a committed one ("c2-0".."c2-4"); with "open", a fourth one left open
// (prints "open") until stdin closes, then aborted; prints "done" when all are complete.

import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnWriter {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[2]);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        String topic = args[1];
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            String[] prefixes = {"c1", "a", "c2"};
            for (String prefix : prefixes) {
                producer.beginTransaction();
                for (int i = 0; i < 5; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k", prefix + "-" + i));
                }
                producer.flush();
                if (prefix.startsWith("a")) {
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
            }
            if (args.length > 3 && args[3].equals("open")) {
                // A fourth transaction left open ("open-0".."open-4") until stdin closes, then
                // aborted: the consumer's read_committed end offset stops before it.
                producer.beginTransaction();
                for (int i = 0; i < 5; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k", "open-" + i));
                }
                producer.flush();
                System.out.println("open");
                System.out.flush();
                while (System.in.read() != -1) {
                }
                producer.abortTransaction();
            }
        }
        System.out.println("done");
    }
}
