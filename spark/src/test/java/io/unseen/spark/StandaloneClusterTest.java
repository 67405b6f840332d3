package io.unseen.spark;

import io.unseen.cli.TinyModels;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A real Spark standalone cluster on this machine: a master and two workers in their own JVMs, started from the
 * Maven jars (a SPARK_HOME whose jars/ links the test classpath's jars serves the workers' executor command). One
 * worker, with its executor, is killed while its task runs; the job must still write every sample, each identical
 * to the single-machine `unseen sample`, and leave no temporary file. Needs nothing beyond the test classpath, so
 * it never skips.
 */
class StandaloneClusterTest {
    /**
     * The cluster's folder, kept after the run for its logs: master.log, worker0.log, worker1.log and each executor's
     * stderr under workerN/APP/EXECUTOR/.
     */
    private final Path dir = Path.of("target", "standalone-cluster").toAbsolutePath();
    private final List<Process> daemons = new ArrayList<>();

    @org.junit.jupiter.api.BeforeEach
    void freshFolder() throws IOException {
        SparkSampleCommand.deleteRecursively(dir);
        Files.createDirectories(dir);
    }

    /** What the driver saw, recorded by a listener Spark creates from its class name (spark.extraListeners). */
    public static final class TaskWatcher extends SparkListener {
        /** Running tasks: task id to (executor id, launch time in ms). */
        static final Map<Long, Map.Entry<String, Long>> RUNNING = new ConcurrentHashMap<>();
        static final Map<String, Integer> STARTED_ON = new ConcurrentHashMap<>();
        static final List<String> REMOVED = java.util.Collections.synchronizedList(new ArrayList<>());
        static final List<String> FAILURES = java.util.Collections.synchronizedList(new ArrayList<>());

        @Override
        public void onTaskStart(SparkListenerTaskStart e) {
            RUNNING.put(e.taskInfo().taskId(), Map.entry(e.taskInfo().executorId(), e.taskInfo().launchTime()));
            STARTED_ON.merge(e.taskInfo().executorId(), 1, Integer::sum);
        }

        @Override
        public void onTaskEnd(SparkListenerTaskEnd e) {
            RUNNING.remove(e.taskInfo().taskId());
            if (!e.reason().toString().equals("Success")) {
                FAILURES.add(e.taskInfo().executorId() + ": " + e.reason());
            }
        }

        @Override
        public void onExecutorRemoved(SparkListenerExecutorRemoved e) {
            REMOVED.add(e.executorId() + ": " + e.reason());
        }
    }

    /** The job under test, run on another thread. */
    private CompletableFuture<Outputs.Run> job;

    @AfterEach
    void stopCluster() throws Exception {
        for (Process p : daemons) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        // a job left running by a failed assertion would keep its SparkContext, and the next test in this JVM
        // could not start one
        if (job != null && !job.isDone()) {
            scala.Option<org.apache.spark.SparkContext> active = org.apache.spark.SparkContext$.MODULE$.getActive();
            if (active.isDefined()) {
                active.get().stop();
            }
            try {
                job.get(2, TimeUnit.MINUTES);
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException ignored) {
                // the test has failed already; this only frees the JVM for the next one
            }
        }
    }

    @Test
    void aKilledWorkerLosesNoSampleAndLeavesNoTemporaryFile() throws Exception {
        // a model big enough that a task takes a second or two, so the kill lands while tasks run
        Path model = TinyModels.write(dir.resolve("tiny16.safetensors"), 16, 1);
        Path refs = TinyModels.references(dir.resolve("refs"), 6, 16);
        Path prior = dir.resolve("prior.safetensors");
        Outputs.unseen("invert", "--model", model.toString(), "--images", refs.toString(), "--t0", "500",
                "--steps", "5", "--output", prior.toString(), "--k", "4");
        String[] sample = {"sample", "--model", model.toString(), "--prior", prior.toString(), "--count", "6",
                "--method", "gaussian", "--seed", "21", "--steps", "30", "--batch-size", "1"};
        Path cli = dir.resolve("cli");
        Outputs.unseen(with(sample, "--output", cli.toString()));

        String masterUrl = startCluster();
        TaskWatcher.RUNNING.clear();
        TaskWatcher.STARTED_ON.clear();
        TaskWatcher.REMOVED.clear();
        TaskWatcher.FAILURES.clear();
        Path out = dir.resolve("cluster");
        String[] args = with(sample, "--output", out.toString(), "--master", masterUrl, "--partitions", "6",
                "--conf", "spark.executor.extraClassPath=" + classDirectories(),
                "--conf", "spark.executor.extraJavaOptions=-Dunseen.threads=1",
                "--conf", "spark.executor.memory=512m",
                "--conf", "spark.executor.cores=1",
                "--conf", "spark.cores.max=2",
                "--conf", "spark.driver.host=127.0.0.1",
                "--conf", "spark.ui.enabled=false",
                // schedule only once both executors are up, so that both have work when one is killed
                "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
                "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=120s",
                "--conf", "spark.extraListeners=" + TaskWatcher.class.getName());
        job = CompletableFuture.supplyAsync(() -> Outputs.unseenSpark(args));

        // kill the worker of an executor in the middle of its task, with the executor
        String victim = null;
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (victim == null && !job.isDone() && System.nanoTime() < deadline) {
            if (TaskWatcher.STARTED_ON.size() == 2) {
                // the executor of the task launched last: the furthest from its end
                victim = TaskWatcher.RUNNING.values().stream().max(Map.Entry.comparingByValue())
                        .map(Map.Entry::getKey).orElse(null);
            }
            if (victim == null) {
                Thread.sleep(20);
            }
        }
        assertFalse(job.isDone(), "the job ended before a worker could be killed: " + (job.isDone() ? job.get() : ""));
        assertTrue(victim != null, "no executor ran a task within 3 minutes; see the logs in " + dir);
        String killed = victim;
        Process worker = workerOf(killed);
        worker.descendants().forEach(ProcessHandle::destroyForcibly);
        worker.destroyForcibly();

        Outputs.Run r = job.get(5, TimeUnit.MINUTES);
        assertEquals(0, r.exitCode(), r.stderr());
        assertTrue(TaskWatcher.REMOVED.stream().anyMatch(s -> s.startsWith(killed + ":")),
                "the driver never lost executor " + killed + ": " + TaskWatcher.REMOVED);
        assertTrue(TaskWatcher.FAILURES.stream().anyMatch(s -> s.startsWith(killed + ":")),
                "no task of executor " + killed + " failed, so none was lost mid-run: " + TaskWatcher.FAILURES);
        Outputs.assertSameFiles(cli, out); // every sample, identical, and no temporary file left
    }

    static String[] with(String[] args, String... more) {
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    /** Starts the master and two one-core workers; returns the master's URL. */
    private String startCluster() throws Exception {
        Path sparkHome = sparkHome();
        int port = freePort();
        String url = "spark://127.0.0.1:" + port;
        daemons.add(daemon("master", sparkHome, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                "--port", "" + port, "--webui-port", "" + freePort()));
        waitForPort(port, daemons.get(0));
        for (int w = 0; w < 2; w++) {
            Path work = Files.createDirectories(dir.resolve("worker" + w));
            daemons.add(daemon("worker" + w, sparkHome, "org.apache.spark.deploy.worker.Worker", url,
                    "--host", "127.0.0.1", "--cores", "1", "--memory", "1g", "--work-dir", work.toString(),
                    "--webui-port", "" + freePort()));
        }
        return url;
    }

    /** The worker whose work folder holds the executor's folder (APP/EXECUTOR). */
    private Process workerOf(String executorId) throws IOException {
        for (int w = 0; w < 2; w++) {
            try (var apps = Files.list(dir.resolve("worker" + w))) {
                for (Path app : apps.toList()) {
                    if (Files.isDirectory(app.resolve(executorId))) {
                        return daemons.get(1 + w);
                    }
                }
            }
        }
        throw new AssertionError("no worker folder holds executor " + executorId);
    }

    /** A daemon JVM on the test classpath, with the flags Spark needs on Java 17; its output in DIR/NAME.log. */
    private Process daemon(String name, Path sparkHome, String mainClass, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx256m");
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> a.startsWith("--add-opens") || a.startsWith("--add-modules") || a.startsWith("-Djdk.reflect")
                        || a.startsWith("-Dio.netty")).toList());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile());
        pb.environment().put("SPARK_HOME", sparkHome.toString());
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        // Spark's launcher takes the Scala version from a build folder, which a SPARK_HOME of jars has not
        pb.environment().put("SPARK_SCALA_VERSION", "2.13");
        return pb.start();
    }

    /** SPARK_HOME for the workers: jars/ links every jar of the test classpath (Spark, Scala, ours). */
    private Path sparkHome() throws IOException {
        Path jars = Files.createDirectories(dir.resolve("spark-home/jars"));
        int n = 0;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path p = Path.of(entry);
            if (entry.endsWith(".jar") && Files.isRegularFile(p)) {
                Files.createSymbolicLink(jars.resolve((n++) + "-" + p.getFileName()), p.toAbsolutePath());
            }
        }
        return jars.getParent();
    }

    /** The class folders of the test classpath (our modules' target/classes): the executors' extra classpath. */
    private static String classDirectories() {
        List<String> dirs = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (Files.isDirectory(Path.of(entry))) {
                dirs.add(entry);
            }
        }
        return String.join(File.pathSeparator, dirs);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private void waitForPort(int port, Process p) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                fail("the master exited: " + Files.readString(dir.resolve("master.log")));
            }
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                return;
            } catch (IOException notYet) {
                Thread.sleep(100);
            }
        }
        fail("the master did not listen on " + port + " within 60 s: " + Files.readString(dir.resolve("master.log")));
    }
}
