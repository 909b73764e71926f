// Generates backoff_vectors.txt by running the Java client's ExponentialBackoff with jitter 0
// (the jitter draws from ThreadLocalRandom and cannot be fixed; kafkit's jitter is tested apart).
// Run it as Murmur2Vectors.java (README.md). Every line:
//   <initial ms> <multiplier> <max ms> <backoff(0)> <backoff(1)> ... <backoff(12)>
import org.apache.kafka.common.utils.ExponentialBackoff;

public class BackoffVectors {
    public static void main(String[] args) {
        long[][] cases = {
            {100, 2, 1000}, {50, 2, 1000}, {30, 2, 1000}, {10000, 2, 30000}, {0, 2, 1000},
            {1, 2, 1}, {2000, 2, 1000}, {50, 2, 50}, {7, 3, 5000}, {100, 2, 100000},
            {1, 2, 2147483647L}, {250, 10, 999999},
        };
        System.out.println("# initial_ms multiplier max_ms backoff(0..=12) with jitter 0, kafka-clients ExponentialBackoff");
        for (long[] c : cases) {
            ExponentialBackoff b = new ExponentialBackoff(c[0], (int) c[1], c[2], 0.0);
            StringBuilder line = new StringBuilder(c[0] + " " + c[1] + " " + c[2]);
            for (int attempt = 0; attempt <= 12; attempt++) line.append(' ').append(b.backoff(attempt));
            System.out.println(line);
        }
    }
}
