package io.unseen.engine.opencl;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OpenClDevicesTest {

    @Test
    void listIsIndexedAndStable() {
        OpenClTestSupport.device();
        List<OpenClDevices.DeviceInfo> a = OpenClDevices.list(), b = OpenClDevices.list();
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(i, a.get(i).index());
            assertEquals(a.get(i).name(), b.get(i).name());
            assertEquals(a.get(i).platform(), b.get(i).platform());
            assertTrue(a.get(i).maxWorkGroupSize() > 0, a.get(i).describe());
            assertTrue(a.get(i).globalMemoryBytes() > 0, a.get(i).describe());
            System.out.println(a.get(i).describe());
        }
    }

    @Test
    void theTestDeviceProbesClean() {
        assertNull(OpenClDevices.probe(OpenClTestSupport.device()));
    }

    @Test
    void pickFollowsTheSpec() {
        OpenClTestSupport.device();
        List<OpenClDevices.DeviceInfo> all = OpenClDevices.list();
        OpenClDevices.DeviceInfo first = OpenClDevices.pick("opencl");
        OpenClDevices.DeviceInfo firstGpu = all.stream().filter(d -> d.type().equals("GPU")).findFirst().orElse(null);
        assertEquals(firstGpu == null ? 0 : firstGpu.index(), first.index());
        assertEquals(all.size() - 1, OpenClDevices.pick("opencl:" + (all.size() - 1)).index());
        assertSame(all.get(0).device(), OpenClDevices.pick(" OpenCL:0 ").device());

        IllegalArgumentException outOfRange = assertThrows(IllegalArgumentException.class,
                () -> OpenClDevices.pick("opencl:" + all.size()));
        assertTrue(outOfRange.getMessage().contains("opencl:0 "), outOfRange.getMessage());
        assertThrows(IllegalArgumentException.class, () -> OpenClDevices.pick("opencl:-1"));
        assertThrows(IllegalArgumentException.class, () -> OpenClDevices.pick("opencl:x"));
        assertThrows(IllegalArgumentException.class, () -> OpenClDevices.pick("cuda"));
    }

    @Test
    void noDeviceSaysToInstallADriver() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpenClDevices.pick("opencl", List.of()));
        assertTrue(e.getMessage().contains("pocl-opencl-icd"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> OpenClDevices.pick("opencl:0", List.of()));
    }
}
