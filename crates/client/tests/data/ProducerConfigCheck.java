// What the Java client (kafka-clients 4.1.0) does with edge cases of producer settings that
// kafkit mirrors; its output is producer_config_java.txt. Run it as Murmur2Vectors.java (README.md).
import java.util.*;
import org.apache.kafka.clients.producer.ProducerConfig;
public class ProducerConfigCheck {
    static void t(String... kv) {
        Map<String,Object> m = new HashMap<>();
        m.put("bootstrap.servers","localhost:9092");
        m.put("key.serializer","org.apache.kafka.common.serialization.ByteArraySerializer");
        m.put("value.serializer","org.apache.kafka.common.serialization.ByteArraySerializer");
        for (int i=0;i<kv.length;i+=2) m.put(kv[i],kv[i+1]);
        try { ProducerConfig c = new ProducerConfig(m);
          System.out.println(Arrays.toString(kv)+" -> idem="+c.getBoolean("enable.idempotence")+" acks="+c.getString("acks")+" rbmax="+c.getLong("reconnect.backoff.max.ms"));
        } catch (Exception e) { System.out.println(Arrays.toString(kv)+" -> "+e); }
    }
    public static void main(String[] a) {
        t();
        t("acks","1","max.in.flight.requests.per.connection","10");
        t("acks","1");
        t("retries","0");
        t("max.in.flight.requests.per.connection","6");
        t("enable.idempotence","false","max.in.flight.requests.per.connection","6");
        t("enable.idempotence","true","acks","1");
        t("acks","ALL");
        t("acks"," all ");
        t("compression.type","GZIP");
        t("enable.idempotence","TRUE");
        t("reconnect.backoff.ms","5000");
        t("linger.ms","+5");
        t("batch.size","-1");
        t("transactional.id","x","acks","1");
        t("connections.max.idle.ms","-1");
        t("socket.connection.setup.timeout.ms","-5");
        t("bootstrap.servers","a:1,,b:2");
    }
}
