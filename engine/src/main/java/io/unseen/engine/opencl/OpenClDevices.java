package io.unseen.engine.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;
import com.aparapi.internal.opencl.OpenCLPlatform;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.logging.Handler;

/**
 * The OpenCL devices Aparapi sees, on every platform, and the choice of one from a command-line spec.
 *
 * <p>Order: platforms sorted by name (the ICD loader's order depends on the file system), devices in the order
 * their platform reports them; indices count across platforms.
 */
public final class OpenClDevices {
    private OpenClDevices() {
    }

    /** One OpenCL device. {@code vendor} is the platform's vendor (Aparapi does not expose the device's). */
    public record DeviceInfo(int index, String platform, String name, String vendor, String type,
                             long globalMemoryBytes, int maxWorkGroupSize, OpenCLDevice device) {
        /** One line: index, platform, name, type, memory, work-group limit. */
        public String describe() {
            return String.format(Locale.ROOT, "opencl:%d %s / %s (%s, %.1f GiB, max work-group %d)", index,
                    platform, name, type, globalMemoryBytes / (double) (1L << 30), maxWorkGroupSize);
        }
    }

    /** Every device on every platform, in a stable order; empty when there is no OpenCL platform. */
    public static synchronized List<DeviceInfo> list() {
        AparapiWarnings.quietConsole();
        List<OpenCLPlatform> platforms;
        try {
            platforms = new ArrayList<>(new OpenCLPlatform().getOpenCLPlatforms());
        } catch (LinkageError | RuntimeException e) {
            return List.of();
        }
        platforms.sort(Comparator.comparing(p -> String.valueOf(p.getName())));
        List<DeviceInfo> out = new ArrayList<>();
        for (OpenCLPlatform p : platforms) {
            for (OpenCLDevice d : p.getOpenCLDevices()) {
                out.add(new DeviceInfo(out.size(), clean(p.getName()), clean(d.getName()), clean(p.getVendor()),
                        String.valueOf(d.getType()), d.getGlobalMemSize(), d.getMaxWorkGroupSize(), d));
            }
        }
        return List.copyOf(out);
    }

    /**
     * Runs a tiny kernel on the device. Returns null when it really ran in OpenCL with the right result, else one
     * line saying why not (Aparapi's fallback to Java threads counts as a failure).
     */
    public static String probe(DeviceInfo info) {
        SignalChaining.warnIfMissing(info.platform());
        int n = 64;
        int local = Math.max(1, Math.min(n, Integer.highestOneBit(Math.max(1, info.maxWorkGroupSize()))));
        List<String> warnings = new ArrayList<>();
        Handler handler = AparapiWarnings.capture(warnings);
        // Buffers of their own (CL_MEM_COPY_HOST_PTR), as ArenaKernel uses; with the default (USE_HOST_PTR) a CPU
        // device writes the Java array directly and the Java-fallback check below could not tell the difference.
        info.device().setSharedMemory(false);
        ProbeKernel k = new ProbeKernel(info.device(), n);
        try {
            k.setExplicit(true);
            try {
                k.execute(Range.create(info.device(), n, local));
            } catch (RuntimeException | AssertionError e) {
                return info.describe() + ": the probe kernel failed: " + e + AparapiWarnings.first(warnings);
            }
            if (!k.isRunningCL()) {
                return info.describe() + ": Aparapi gave up on the device" + AparapiWarnings.first(warnings);
            }
            for (float v : k.out) {
                if (v != 0f) {
                    // explicit mode: only the Java fallback writes the host array during execute
                    return info.describe() + ": the probe ran in Java, not in OpenCL"
                            + AparapiWarnings.first(warnings);
                }
            }
            k.get(k.out);
            for (int i = 0; i < n; i++) {
                if (k.out[i] != 2f * i + 1f) {
                    return info.describe() + ": the probe kernel computed " + k.out[i] + " at " + i + ", expected "
                            + (2f * i + 1f);
                }
            }
            return null;
        } catch (RuntimeException | LinkageError e) {
            return info.describe() + ": " + e;
        } finally {
            k.dispose();
            AparapiWarnings.release(handler);
        }
    }

    /**
     * The device for a spec: "opencl" is the first GPU, else the first device; "opencl:N" is device N of
     * {@link #list()}.
     *
     * @throws IllegalArgumentException when there is no device, N is out of range, or the spec is malformed; the
     *                                  message lists the devices
     */
    public static DeviceInfo pick(String spec) {
        return pick(spec, list());
    }

    /** {@link #pick(String)} among the given devices. */
    static DeviceInfo pick(String spec, List<DeviceInfo> devices) {
        String s = spec == null ? "" : spec.trim().toLowerCase(Locale.ROOT);
        if (!s.equals("opencl") && !s.startsWith("opencl:")) {
            throw new IllegalArgumentException("not an OpenCL device spec: '" + spec
                    + "' (use opencl for the first GPU, or opencl:N)");
        }
        if (devices.isEmpty()) {
            throw new IllegalArgumentException("no OpenCL device found for '" + spec + "': no OpenCL platform is "
                    + "installed or none has a device. Install an OpenCL driver (ICD), e.g. Debian's "
                    + "pocl-opencl-icd for the CPU, or the GPU vendor's OpenCL driver; clinfo -l lists what the "
                    + "system sees.");
        }
        if (s.equals("opencl")) {
            for (DeviceInfo d : devices) {
                if (d.type().equals("GPU")) {
                    return d;
                }
            }
            return devices.get(0);
        }
        String number = s.substring("opencl:".length());
        int index;
        try {
            index = Integer.parseInt(number);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad OpenCL device spec '" + spec + "': '" + number
                    + "' is not a device number. Devices:" + listing(devices));
        }
        if (index < 0 || index >= devices.size()) {
            throw new IllegalArgumentException("no OpenCL device " + index + " ('" + spec + "'); there "
                    + (devices.size() == 1 ? "is 1 device" : "are " + devices.size() + " devices") + ":"
                    + listing(devices));
        }
        return devices.get(index);
    }

    /** "platform / name (type)" of a device, for messages. */
    static String describe(OpenCLDevice d) {
        String platform = d.getOpenCLPlatform() == null ? "?" : clean(d.getOpenCLPlatform().getName());
        return platform + " / " + clean(d.getName()) + " (" + d.getType() + ")";
    }

    /** The devices on the same line (the CLI's errors are one line): " opencl:0 ...; opencl:1 ...". */
    private static String listing(List<DeviceInfo> devices) {
        StringBuilder b = new StringBuilder();
        for (DeviceInfo d : devices) {
            b.append(b.length() == 0 ? " " : "; ").append(d.describe());
        }
        return b.toString();
    }

    private static String clean(String s) {
        return s == null ? "?" : s.trim();
    }
}
