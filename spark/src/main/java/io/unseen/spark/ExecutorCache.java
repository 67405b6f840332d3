package io.unseen.spark;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.engine.backends.Backends;
import org.apache.spark.SparkFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What an executor JVM keeps between tasks: models and priors, loaded once, keyed by fingerprint (so a second job
 * with another model never gets a stale one). A model holds its activations, so one task uses an instance at a
 * time: tasks running side by side in one executor (spark.executor.cores over spark.task.cpus) each borrow their
 * own, and give it back for the next task.
 */
final class ExecutorCache {
    private static final Map<String, Deque<FrozenModel>> IDLE_MODELS = new HashMap<>();
    private static final Map<String, DomainPrior> PRIORS = new ConcurrentHashMap<>();

    private ExecutorCache() {
    }

    /** A model for this task's exclusive use; give it back with {@link #giveBack}. */
    static FrozenModel borrowModel(ShippedFile model, String device) throws IOException {
        String key = model.fingerprint() + "@" + device;
        synchronized (IDLE_MODELS) {
            Deque<FrozenModel> idle = IDLE_MODELS.get(key);
            if (idle != null && !idle.isEmpty()) {
                return idle.pop();
            }
        }
        return FrozenModel.load(model.local(), Backends.byName(device)); // outside the lock: loading takes seconds
    }

    static void giveBack(FrozenModel model, ShippedFile file, String device) {
        synchronized (IDLE_MODELS) {
            IDLE_MODELS.computeIfAbsent(file.fingerprint() + "@" + device, k -> new ArrayDeque<>()).push(model);
        }
    }

    /** The prior, shared by every task of this JVM (it is only read). */
    static DomainPrior prior(ShippedFile prior) throws IOException {
        DomainPrior p = PRIORS.get(prior.fingerprint());
        if (p == null) {
            p = DomainPrior.load(prior.local());
            PRIORS.putIfAbsent(prior.fingerprint(), p);
        }
        return p;
    }

    /**
     * A file the driver registered with {@code SparkContext.addFile}: every executor fetches it once, from the
     * driver or from its URI (hdfs://, s3a://).
     *
     * @param name        its file name, which SparkFiles finds it by
     * @param fingerprint what the cache keys it by
     * @param shown       the user's name for it (the flag's value), for messages
     */
    record ShippedFile(String name, String fingerprint, String shown) implements java.io.Serializable {
        Path local() {
            return Path.of(SparkFiles.get(name));
        }
    }
}
