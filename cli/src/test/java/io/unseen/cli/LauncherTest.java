package io.unseen.cli;

import io.unseen.engine.backends.Backends;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launchers as a user runs them: the repository's ./unseen and the distribution's bin/unseen, each copied with
 * cli/src/main/sh/launch.sh into a folder whose name has a space, running a jar there whose manifest points at this
 * build's classes (the shaded jar does not exist yet in the test phase). The repository's launcher runs on a JDK whose
 * path has a space too (a copy of the java binary beside links to the rest of this JDK), so that its libjsig path has
 * one. Each child gets no LD_PRELOAD (Surefire sets one) and a cache folder of its own.
 */
class LauncherTest {
    @TempDir
    static Path tmp;
    /** "repo copy/unseen", with cli/src/main/sh/launch.sh and cli/target/unseen.jar beside it as in the repository. */
    private static Path repoLauncher;
    /** "dist copy/bin/unseen", with lib/launch.sh, lib/unseen.jar and runtime (a link to this JDK). */
    private static Path distLauncher;
    /** "jdk copy/bin", to put first on the PATH. */
    private static Path jdkWithSpaceBin;
    private static Path cache;

    @BeforeAll
    static void layouts() throws IOException {
        Path repo = Path.of("").toAbsolutePath().getParent();
        Path jar = classPathJar(tmp.resolve("unseen.jar"));

        Path r = tmp.resolve("repo copy");
        Files.createDirectories(r.resolve("cli/src/main/sh"));
        Files.createDirectories(r.resolve("cli/target"));
        repoLauncher = executable(Files.copy(repo.resolve("unseen"), r.resolve("unseen")));
        Files.copy(repo.resolve("cli/src/main/sh/launch.sh"), r.resolve("cli/src/main/sh/launch.sh"));
        Files.copy(jar, r.resolve("cli/target/unseen.jar"));

        Path d = tmp.resolve("dist copy");
        Files.createDirectories(d.resolve("bin"));
        Files.createDirectories(d.resolve("lib"));
        distLauncher = executable(Files.copy(repo.resolve("dist/src/unseen"), d.resolve("bin/unseen")));
        Files.copy(repo.resolve("cli/src/main/sh/launch.sh"), d.resolve("lib/launch.sh"));
        Files.copy(jar, d.resolve("lib/unseen.jar"));
        Path javaHome = Path.of(System.getProperty("java.home")).toRealPath();
        Files.createSymbolicLink(d.resolve("runtime"), javaHome);

        Path jdk = tmp.resolve("jdk copy");
        jdkWithSpaceBin = Files.createDirectories(jdk.resolve("bin"));
        // a copy, not a link: the launcher resolves links to find the JDK's lib/libjsig.so
        executable(Files.copy(javaHome.resolve("bin/java"), jdkWithSpaceBin.resolve("java")));
        try (Stream<Path> entries = Files.list(javaHome)) {
            for (Path e : entries.toList()) {
                if (!e.getFileName().toString().equals("bin")) {
                    Files.createSymbolicLink(jdk.resolve(e.getFileName()), e);
                }
            }
        }
        cache = Files.createDirectories(tmp.resolve("cache"));
    }

    /** The links to this JDK, removed before the temporary folder is (JUnit warns about each). */
    @AfterAll
    static void removeLinks() throws IOException {
        try (Stream<Path> files = Files.walk(tmp)) {
            for (Path f : files.filter(Files::isSymbolicLink).toList()) {
                Files.delete(f);
            }
        }
    }

    /** A jar with no classes whose manifest runs UnseenCommand on this test's class path. */
    private static Path classPathJar(Path jar) throws IOException {
        Manifest m = new Manifest();
        Attributes a = m.getMainAttributes();
        a.put(Attributes.Name.MANIFEST_VERSION, "1.0");
        a.put(Attributes.Name.MAIN_CLASS, UnseenCommand.class.getName());
        a.put(new Attributes.Name("Add-Opens"), "java.base/java.nio");
        StringBuilder cp = new StringBuilder();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            cp.append(Path.of(entry).toAbsolutePath().toUri()).append(' ');
        }
        a.put(Attributes.Name.CLASS_PATH, cp.toString().trim());
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out, m)) {
            j.flush();
        }
        return jar;
    }

    private static Path executable(Path p) throws IOException {
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }

    @Test
    void theStderrFilterPassesEachLineAtOnceAndOutlivesSignalsToItsGroup() throws Exception {
        Path launch = repoLauncher.getParent().resolve("cli/src/main/sh/launch.sh");
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", "source \"$0\"; unseen_stderr", launch.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        Output out = new Output(p.getInputStream());
        OutputStream in = p.getOutputStream();
        try {
            write(in, "WARNING: Using incubator modules: jdk.incubator.vector\nfirst line\n");
            out.await("first line\n");
            write(in, "\rsampling 1/2"); // a progress bar: no newline yet
            out.await("\rsampling 1/2");
            for (String signal : List.of("INT", "TERM", "HUP", "QUIT")) {
                kill("-" + signal, String.valueOf(p.pid()));
            }
            write(in, "\nWARNING: Aparapi is running on an untested OpenCL platform version: OpenCL 3.0 PoCL\n"
                    + "last line\n");
            in.close();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS), "the filter ends when its input does");
            assertEquals(0, p.exitValue());
            out.awaitEnd();
            assertEquals("first line\n\rsampling 1/2\nlast line\n", out.all());
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void aJvmThatDoesNotStartIsOneLineNamingJavaOpts() throws Exception {
        Run bogus = run(repoLauncher, Map.of("JAVA_OPTS", "-XX:+Bogus"), "env");
        bogus.failsWithOneLine("unseen: JAVA_OPTS: Unrecognized VM option 'Bogus' (the JVM did not start with"
                + " JAVA_OPTS=\"-XX:+Bogus\"; fix or remove that option)");
        // the JVM writes "Too small maximum heap" to stdout unless told otherwise
        Run tiny = run(repoLauncher, Map.of("JAVA_OPTS", "-Xmx1m"), "env");
        tiny.failsWithOneLine("unseen: JAVA_OPTS: Too small maximum heap (the JVM did not start with"
                + " JAVA_OPTS=\"-Xmx1m\"; give it a heap it can have, e.g. -Xmx4g)");
        Run word = run(repoLauncher, Map.of("JAVA_OPTS", "-Xmx8 g"), "env");
        word.failsWithOneLine("unseen: JAVA_OPTS: \"g\" is not a JVM option (every word starts with -, e.g."
                + " JAVA_OPTS=\"-Xmx8g -Dunseen.threads=4\")");
        Run dist = run(distLauncher, Map.of("JAVA_OPTS", "-Dx=1 -XX:Foo"), "env");
        dist.failsWithOneLine("unseen: JAVA_OPTS: Unrecognized VM option 'Foo' (the JVM did not start with"
                + " JAVA_OPTS=\"-Dx=1 -XX:Foo\"; fix or remove that option)");
    }

    @Test
    void outOfMemoryNamesTheHeapGivenAndTheLauncherFitsATinyHeap() throws Exception {
        Run r = run(repoLauncher, Map.of("JAVA_OPTS", "-Xmx16m"), "demo", "--count", "1", "--steps", "2",
                "--output", tmp.resolve("demo-16m").toString());
        assertEquals(1, r.rc, r.toString());
        List<String> lines = r.errLines();
        assertEquals("unseen: out of memory: the JVM may use at most 16 MiB (-Xmx16m; give it more, e.g."
                + " JAVA_OPTS=-Xmx32m, or lower --batch-size)", lines.get(lines.size() - 1), r.toString());
        // the launcher's 48 MiB young-generation cap is not given to a heap this small (the JVM warned about it)
        assertFalse(r.out.contains("MaxNewSize") || r.err.contains("MaxNewSize"), r.toString());
    }

    @Test
    void unseenBackendIsTheDefaultDeviceAndABogusOneIsOneLine() throws Exception {
        Run env = run(repoLauncher, Map.of("UNSEEN_BACKEND", "Reference"), "env");
        assertEquals(0, env.rc, env.toString());
        assertTrue(env.out.contains("device:      reference (scalar Java)"), env.toString());
        // nothing else on stderr: no incubator notice, and libjsig (env preloads it) from a JDK path with a space
        // reached LD_PRELOAD whole (the dynamic linker said "cannot be preloaded" for each half)
        assertEquals("", env.err);

        Run property = run(distLauncher, Map.of("UNSEEN_BACKEND", "cpu", "JAVA_OPTS", "-Dunseen.backend=REFERENCE"),
                "env");
        assertTrue(property.out.contains("device:      reference (scalar Java)"), property.toString());
        assertEquals("", property.err);
        Run flag = run(distLauncher, Map.of("UNSEEN_BACKEND", "reference"), "env", "--device", "cpu");
        assertTrue(flag.out.contains("device:      cpu (Java Vector API)"), flag.toString());

        run(repoLauncher, Map.of("UNSEEN_BACKEND", "bogus"), "env").failsWithOneLine(
                "unseen: UNSEEN_BACKEND: unknown backend \"bogus\" (choose cpu, reference, opencl, opencl:N or auto)");
        run(distLauncher, Map.of("JAVA_OPTS", "-Dunseen.backend=gpu"), "env").failsWithOneLine(
                "unseen: -Dunseen.backend: unknown backend \"gpu\" (choose cpu, reference, opencl, opencl:N or auto)");
    }

    /**
     * Which command lines take the OpenCL flags (G1, libjsig): a device naming opencl or auto, in any case and either
     * spelling, and not a bare {@code auto} that is some other option's value ({@code --conv auto}, which took G1 and
     * a third more memory on the cpu path).
     */
    @Test
    void onlyADeviceOfOpenClOrAutoTakesTheOpenClFlags() throws Exception {
        Path launch = repoLauncher.getParent().resolve("cli/src/main/sh/launch.sh");
        Map<String, Boolean> cases = new java.util.LinkedHashMap<>();
        cases.put("sample --device opencl", true);
        cases.put("sample --device=OpenCL:1", true);
        cases.put("bench --device AUTO", true);
        cases.put("bench --device=auto", true);
        cases.put("devices", true);
        cases.put("bench --conv auto", false);
        cases.put("bench --conv auto --device cpu", false);
        cases.put("sample --device cpu --output auto", false);
        cases.put("bench", false);
        for (Map.Entry<String, Boolean> c : cases.entrySet()) {
            ProcessBuilder pb = new ProcessBuilder("bash", "-c",
                    "source \"$0\"; java_opts=(); if unseen_may_open_opencl $1; then echo yes; else echo no; fi",
                    launch.toString(), c.getKey());
            pb.environment().remove("UNSEEN_BACKEND");
            pb.redirectErrorStream(true);
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(c.getValue() ? "yes" : "no", out, c.getKey());
        }
    }

    /** Java reads --device in any case; so must the launcher, which preloads libjsig for OpenCL (checked in serve). */
    @Test
    void deviceOpenClInCapitalsOpensOpenCl() throws Exception {
        Run r = run(repoLauncher, Map.of(), "env", "--device", "OPENCL");
        if (Backends.testable().contains("opencl")) {
            assertEquals(0, r.rc, r.toString());
            assertTrue(r.out.contains("device:      opencl ("), r.toString());
            // on PoCL the engine warns when libjsig is missing; Aparapi's platform notice is filtered
            assertEquals("", r.err);
        } else {
            // no OpenCL here (and not CI): still read as opencl, whose absence is one line
            assertEquals(1, r.rc, r.toString());
            assertEquals(1, r.errLines().size(), r.toString());
            assertTrue(r.err.startsWith("unseen: no OpenCL device found"), r.toString());
        }
    }

    @Test
    void withoutACacheFolderFreeOfSpacesLibjsigIsNotPreloadedAndOneLineSaysWhy() throws Exception {
        Path spaced = Files.createDirectories(tmp.resolve("home dir"));
        Run r = run(repoLauncher, Map.of("HOME", spaced.toString(), "XDG_CACHE_HOME", spaced.resolve(".cache").toString(),
                "XDG_RUNTIME_DIR", ""), "env");
        assertEquals(0, r.rc, r.toString());
        assertEquals(1, r.errLines().size(), r.toString());
        assertTrue(r.err.startsWith("unseen: warning: libjsig not preloaded: its path (" + jdkWithSpaceBin.getParent()
                + "/lib/libjsig.so) has a space"), r.toString());
    }

    @Test
    void serveFromPathsWithSpacesLogsAtOnceAndSaysItStoppedAfterTermToItsGroup() throws Exception {
        serveAndSignal(repoLauncher, "TERM", 143);
    }

    @Test
    void theDistributionsServeSaysItStoppedAfterHupToItsGroup() throws Exception {
        serveAndSignal(distLauncher, "HUP", 129);
    }

    /**
     * `serve --device OPENCL` in a process group of its own, stderr a pipe: a line it writes at start arrives while it
     * runs (grep -v held it in its buffer until exit), libjsig is mapped through a link whose path has no space, G1
     * runs, and after SIGNAL to the whole group its shutdown line still arrives, then the end of stderr.
     */
    private static void serveAndSignal(Path launcher, String signal, int rc) throws Exception {
        Path models = Files.createDirectories(tmp.resolve("models-" + signal));
        Files.writeString(models.resolve("broken.safetensors"), "not a model");
        ProcessBuilder pb = new ProcessBuilder("setsid", launcher.toString(), "serve", "--port", "0", "--device",
                "OPENCL", "--data", tmp.resolve("data-" + signal).toString(), "--models", models.toString());
        environment(pb, Map.of());
        Process p = pb.start();
        Output out = new Output(p.getInputStream());
        Output err = new Output(p.getErrorStream());
        try {
            err.await("unseen serve: not offering " + models.resolve("broken.safetensors"));
            assertTrue(p.isAlive(), "the line arrived while serve runs");
            out.await("unseen serve: http://127.0.0.1:");
            String stat = Files.readString(Path.of("/proc/" + p.pid() + "/stat"));
            long group = Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[2]);
            assertEquals(p.pid(), group, "setsid made the launcher (now the JVM) a group leader");

            String maps = Files.readString(Path.of("/proc/" + p.pid() + "/maps"));
            assertTrue(maps.contains("/libjsig.so"), "libjsig is loaded for --device OPENCL");
            String cmdline = Files.readString(Path.of("/proc/" + p.pid() + "/cmdline")).replace('\0', ' ');
            assertTrue(cmdline.contains("-XX:+UseG1GC"), cmdline);
            String preload = Arrays.stream(Files.readString(Path.of("/proc/" + p.pid() + "/environ")).split("\0"))
                    .filter(e -> e.startsWith("LD_PRELOAD=")).findFirst().orElseThrow().substring(11);
            assertFalse(preload.contains(" "), preload);
            Path libjsig = (launcher == repoLauncher ? jdkWithSpaceBin.getParent()
                    : launcher.getParent().getParent().resolve("runtime")).resolve("lib/libjsig.so");
            assertEquals(libjsig.toString(), Files.readSymbolicLink(Path.of(preload)).toString());

            kill("-" + signal, "--", "-" + group);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "serve stops on SIG" + signal);
            assertEquals(rc, p.exitValue());
            err.awaitEnd();
            assertTrue(err.all().endsWith("unseen serve: stopped\n"), err.all());
            assertFalse(err.all().contains("WARNING"), err.all());
        } finally {
            p.destroyForcibly();
        }
    }

    private static void write(OutputStream in, String s) throws IOException {
        in.write(s.getBytes(StandardCharsets.UTF_8));
        in.flush();
    }

    private static void kill(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "kill \"$@\"", "kill")); // bash's own kill
        cmd.addAll(List.of(args));
        Process k = new ProcessBuilder(cmd).inheritIO().start();
        assertTrue(k.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, k.exitValue(), "kill " + cmd);
    }

    /** The child's environment: no LD_PRELOAD, JAVA_OPTS or UNSEEN_BACKEND of ours, the spaced JDK first on PATH. */
    private static void environment(ProcessBuilder pb, Map<String, String> env) {
        Map<String, String> e = pb.environment();
        e.remove("LD_PRELOAD");
        e.remove("JAVA_OPTS");
        e.remove("UNSEEN_BACKEND");
        e.put("PATH", jdkWithSpaceBin + ":" + e.getOrDefault("PATH", "/usr/bin:/bin"));
        e.put("XDG_CACHE_HOME", cache.toString());
        e.putAll(env);
        pb.directory(tmp.toFile());
    }

    private static Run run(Path launcher, Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(launcher.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        environment(pb, env);
        Process p = pb.start();
        p.getOutputStream().close();
        Output out = new Output(p.getInputStream());
        Output err = new Output(p.getErrorStream());
        try {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "unseen " + String.join(" ", args) + " did not finish");
            out.awaitEnd();
            err.awaitEnd();
            return new Run(p.exitValue(), out.all(), err.all());
        } finally {
            p.destroyForcibly();
        }
    }

    private record Run(int rc, String out, String err) {
        List<String> errLines() {
            return err.isEmpty() ? List.of() : List.of(err.split("\n"));
        }

        void failsWithOneLine(String line) {
            assertNotEquals(0, rc, toString());
            assertEquals(line + "\n", err, toString());
            assertEquals("", out, toString());
        }

        @Override
        public String toString() {
            return "exit " + rc + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    /** A child's stream read as it comes, on a thread of its own. */
    private static final class Output {
        private final StringBuffer text = new StringBuffer();
        private final Thread reader;

        Output(InputStream in) {
            reader = new Thread(() -> {
                byte[] buf = new byte[4096];
                try (in) {
                    for (int n; (n = in.read(buf)) > 0; ) {
                        text.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                    }
                } catch (IOException ignored) {
                    // the process was destroyed
                }
            });
            reader.setDaemon(true);
            reader.start();
        }

        void await(String s) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!text.toString().contains(s)) {
                assertTrue(System.nanoTime() < deadline && reader.isAlive() || text.toString().contains(s),
                        "no \"" + s + "\" in: " + text);
                Thread.sleep(20);
            }
        }

        void awaitEnd() throws InterruptedException {
            reader.join(TimeUnit.SECONDS.toMillis(30));
            assertFalse(reader.isAlive(), "the stream ends: " + text);
        }

        String all() {
            return text.toString();
        }
    }
}
