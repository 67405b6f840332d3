package io.unseen.engine.opencl;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The device the OpenCL tests run on, and the skip rule: without a working OpenCL device the tests fail when the
 * environment variable CI is "true", and are skipped (with the reason printed) otherwise.
 */
final class OpenClTestSupport {
    private static OpenClDevices.DeviceInfo device;
    private static String unavailable;

    private OpenClTestSupport() {
    }

    /** The device for the tests (the first GPU, else the first device), probed once. */
    static synchronized OpenClDevices.DeviceInfo device() {
        if (device == null && unavailable == null) {
            List<OpenClDevices.DeviceInfo> all = OpenClDevices.list();
            if (all.isEmpty()) {
                unavailable = "no OpenCL platform found (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)";
            } else {
                OpenClDevices.DeviceInfo d = OpenClDevices.pick("opencl");
                String why = OpenClDevices.probe(d);
                if (why == null) {
                    device = d;
                } else {
                    unavailable = "OpenCL device unusable: " + why;
                }
            }
        }
        if (unavailable != null) {
            skipOrFail(unavailable);
        }
        return device;
    }

    static void skipOrFail(String why) {
        if ("true".equals(System.getenv("CI"))) {
            fail(why + " (CI=true: OpenCL tests must run)");
        }
        System.out.println("Skipping OpenCL tests: " + why);
        assumeTrue(false, why);
    }

    /** Random values, Gaussian times {@code scale}. */
    static float[] random(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (scale * r.nextGaussian());
        }
        return a;
    }

    /** Fails unless max |actual - expected| <= rel * (1 + max|expected|); says where and by how much. */
    static void assertClose(String what, double[] expected, float[] actual, double rel) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double max = 0;
        for (double e : expected) {
            max = Math.max(max, Math.abs(e));
        }
        double tol = rel * (1 + max);
        double worst = -1;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            if (Double.isNaN(err)) {
                err = Double.POSITIVE_INFINITY;
            }
            if (err > worst) {
                worst = err;
                at = i;
            }
        }
        if (worst > tol) {
            fail(what + ": max error " + worst + " at " + at + " (got " + actual[at] + ", expected " + expected[at]
                    + "), tolerance " + tol);
        }
    }
}
