package io.unseen.cli;

import io.unseen.engine.opencl.OpenClDevices;
import picocli.CommandLine.Command;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** Lists the OpenCL platforms and devices, and whether a test kernel really ran on each (no silent fallback). */
@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "List OpenCL devices (for --device opencl:N): name, platform, vendor, memory, max work-group size,"
                + " and whether a test kernel ran there.")
final class DevicesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.println("cpu        Java Vector API (always available)");
        System.out.println("reference  scalar Java (always available)");
        List<OpenClDevices.DeviceInfo> devices = OpenClDevices.list();
        if (devices.isEmpty()) {
            System.out.println("opencl     no OpenCL platform found: install an OpenCL driver (Debian: pocl-opencl-icd for"
                    + " the CPU, or the GPU vendor's driver); clinfo -l lists what the system sees");
            return 0;
        }
        for (OpenClDevices.DeviceInfo d : devices) {
            String problem = OpenClDevices.probe(d);
            System.out.printf(Locale.ROOT, "opencl:%-3d %s | %s | %s | %s | %,d MiB | max work-group %d | %s%n",
                    d.index(), d.name(), d.platform(), d.vendor(), d.type(), d.globalMemoryBytes() >> 20,
                    d.maxWorkGroupSize(), problem == null ? "test kernel ran" : "FAILED: " + problem);
        }
        return 0;
    }
}
