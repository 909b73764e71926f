// Generates consumer protocol byte vectors with the Java client's own ConsumerProtocol.
//
//   java -cp kafka-clients-4.1.0.jar:slf4j-api-1.7.36.jar GenProtocolVectors.java > protocol.json
import java.nio.ByteBuffer;
import java.util.*;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Assignment;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.common.TopicPartition;

public class GenProtocolVectors {
    static String hex(ByteBuffer b) {
        StringBuilder s = new StringBuilder();
        while (b.hasRemaining()) s.append(String.format("%02x", b.get()));
        return s.toString();
    }

    public static void main(String[] args) {
        List<TopicPartition> owned = List.of(new TopicPartition("zeta", 2), new TopicPartition("alpha", 5),
            new TopicPartition("zeta", 0), new TopicPartition("alpha", 1));
        ByteBuffer ud = ByteBuffer.wrap(new byte[] {0, 0, 0, 9});
        List<Subscription> subs = List.of(
            new Subscription(List.of("t")),
            new Subscription(List.of("zeta", "alpha", "mid"), ud.duplicate(), owned, 7, Optional.of("rack-1")),
            new Subscription(List.of(), null, List.of(), -1, Optional.empty()),
            new Subscription(List.of("x"), ByteBuffer.allocate(0), List.of(new TopicPartition("x", 3)), 0, Optional.empty()));
        StringJoiner out = new StringJoiner(",\n", "{\"subscriptions\":[\n", "");
        int i = 0;
        for (Subscription s : subs) {
            for (short v = 0; v <= 3; v++)
                out.add("{\"case\":" + i + ",\"version\":" + v + ",\"hex\":\"" + hex(ConsumerProtocol.serializeSubscription(s, v)) + "\"}");
            i++;
        }
        StringJoiner as = new StringJoiner(",\n", "],\n\"assignments\":[\n", "]}\n");
        List<Assignment> assigns = List.of(
            new Assignment(List.of()),
            new Assignment(List.of(new TopicPartition("b", 1), new TopicPartition("a", 0), new TopicPartition("b", 0)), ud.duplicate()));
        i = 0;
        for (Assignment a : assigns) {
            for (short v = 0; v <= 3; v++)
                as.add("{\"case\":" + i + ",\"version\":" + v + ",\"hex\":\"" + hex(ConsumerProtocol.serializeAssignment(a, v)) + "\"}");
            i++;
        }
        System.out.print(out.toString() + "\n" + as.toString());
    }
}
