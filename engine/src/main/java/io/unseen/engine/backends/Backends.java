package io.unseen.engine.backends;

import io.unseen.engine.cpu.ReferenceBackend;
import io.unseen.engine.cpu.VectorBackend;
import io.unseen.engine.opencl.OpenClBackend;
import io.unseen.engine.opencl.OpenClDevices;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The one place where a backend is chosen; it sits above the backends' packages so that {@code ops} names none.
 * Model and algorithm code receive a {@link Backend} and never ask which. Names: {@code cpu} (Vector API, the
 * default), {@code reference} (scalar), {@code opencl} (the first OpenCL GPU, else the first OpenCL device),
 * {@code opencl:N} (device N of {@code unseen devices}) and {@code auto} (the first OpenCL GPU, else cpu), in any
 * case. Default: {@link #defaultName}.
 *
 * <p>An OpenCL backend is opened once per device and process (its kernel is compiled once) and shared by every
 * thread (it is thread-safe; each thread needs its own model); closing it removes it, and a later request opens it
 * again.
 */
public final class Backends {
    /** The host backends, always present. */
    public static final List<String> NAMES = List.of("cpu", "reference");
    /** Every name {@link #byName} understands, for help texts. */
    public static final String CHOICES = "cpu|reference|opencl[:N]|auto";

    private static final Map<Integer, OpenClBackend> OPEN = new HashMap<>();
    private static List<OpenClDevices.DeviceInfo> working;
    private static boolean toldWhyNoOpenCl;

    private Backends() {
    }

    /**
     * The backend a name asks for. Asking for OpenCL where none runs fails with one clear line (never a silent
     * fallback); {@code auto} falls back to cpu and {@link #describe} says which it took.
     */
    public static Backend byName(String name) {
        String n = name.toLowerCase(Locale.ROOT).trim();
        switch (n) {
            case "cpu":
                return VectorBackend.INSTANCE;
            case "reference":
                return ReferenceBackend.INSTANCE;
            case "auto": {
                OpenClDevices.DeviceInfo gpu = firstWorkingDevice(true);
                return gpu == null ? VectorBackend.INSTANCE : opencl(gpu);
            }
            default:
                if (n.equals("opencl") || n.startsWith("opencl:")) {
                    return opencl(OpenClDevices.pick(n));
                }
                throw new IllegalArgumentException("unknown device '" + name + "'; choose one of " + CHOICES);
        }
    }

    /** One line naming what a backend runs on, e.g. "opencl (NVIDIA H200, OpenCL device 0)". */
    public static String describe(Backend backend) {
        if (backend instanceof OpenClBackend) {
            OpenClDevices.DeviceInfo d = ((OpenClBackend) backend).device();
            return "opencl (" + d.name() + ", " + d.platform() + ", OpenCL device " + d.index() + ")";
        }
        return backend.name() + (backend == VectorBackend.INSTANCE ? " (Java Vector API)" : " (scalar Java)");
    }

    private static synchronized OpenClBackend opencl(OpenClDevices.DeviceInfo device) {
        OpenClBackend b = OPEN.get(device.index());
        if (b == null || b.isClosed()) {
            b = new OpenClBackend(device);
            OPEN.put(device.index(), b);
        }
        return b;
    }

    /**
     * Every backend the test suites must run over on this machine: the host backends, and {@code opencl} when an
     * OpenCL device works here or when CI=true (CI installs PoCL, so a missing platform there fails the OpenCL
     * tests instead of skipping them).
     */
    public static List<String> testable() {
        List<String> names = new ArrayList<>(NAMES);
        if ("true".equals(System.getenv("CI")) || firstWorkingDevice(false) != null) {
            names.add("opencl");
        } else if (!toldWhyNoOpenCl) {
            toldWhyNoOpenCl = true;
            System.err.println("OpenCL tests skipped: no OpenCL device runs a test kernel here (install "
                    + "pocl-opencl-icd; with CI=true they run and fail instead)");
        }
        return names;
    }

    /** The first device (a GPU, when asked) where a test kernel really runs, or null; probed once per process. */
    private static synchronized OpenClDevices.DeviceInfo firstWorkingDevice(boolean gpuOnly) {
        if (working == null) {
            working = new ArrayList<>();
            for (OpenClDevices.DeviceInfo d : OpenClDevices.list()) {
                if (OpenClDevices.probe(d) == null) {
                    working.add(d);
                }
            }
        }
        for (OpenClDevices.DeviceInfo d : working) {
            if (!gpuOnly || d.type().equals("GPU")) {
                return d;
            }
        }
        return null;
    }

    /** The backend {@link #defaultName} names. */
    public static Backend defaultBackend() {
        return byName(defaultName());
    }

    /**
     * The backend to use when none is asked for: the system property {@code unseen.backend}, else the environment
     * variable {@code UNSEEN_BACKEND} (either in any case; blank counts as unset), else cpu. A name no backend has
     * is refused with one line naming where it came from, never ignored.
     */
    public static String defaultName() {
        String property = System.getProperty("unseen.backend");
        if (property != null && !property.isBlank()) {
            return checkedName(property, "-Dunseen.backend");
        }
        String env = System.getenv("UNSEEN_BACKEND");
        if (env != null && !env.isBlank()) {
            return checkedName(env, "UNSEEN_BACKEND");
        }
        return "cpu";
    }

    private static String checkedName(String name, String source) {
        String n = name.toLowerCase(Locale.ROOT).trim();
        if (NAMES.contains(n) || n.equals("auto") || n.equals("opencl") || n.matches("opencl:[0-9]+")) {
            return n;
        }
        throw new IllegalArgumentException(source + ": unknown backend \"" + name + "\" (choose cpu, reference, opencl,"
                + " opencl:N or auto)");
    }
}
