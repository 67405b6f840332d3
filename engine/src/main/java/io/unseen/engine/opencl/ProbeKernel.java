package io.unseen.engine.opencl;

import com.aparapi.Kernel;
import com.aparapi.device.Device;
import com.aparapi.device.OpenCLDevice;

/** A tiny kernel for {@link OpenClDevices#probe}: out[i] = 2i + 1. Top-level: Aparapi mis-reads nested classes. */
final class ProbeKernel extends Kernel {
    private final OpenCLDevice device;
    float[] out;

    ProbeKernel(OpenCLDevice device, int n) {
        this.device = device;
        this.out = new float[n];
    }

    @Override
    public boolean isAllowDevice(Device d) {
        return device != null && device.equals(d);
    }

    @Override
    public void run() {
        int i = getGlobalId();
        out[i] = 2f * i + 1f;
    }
}
