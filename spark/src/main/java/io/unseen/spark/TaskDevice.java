package io.unseen.spark;

import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * The backend a task runs on. With Spark's GPU scheduling (spark.executor.resource.gpu.amount and
 * spark.task.resource.gpu.amount), {@code --device opencl} means the OpenCL device Spark assigned the task: its
 * discovery script must list OpenCL device numbers, as `unseen devices` prints them. Anything else is used as given.
 */
final class TaskDevice {
    private TaskDevice() {
    }

    /** The device for {@code requested} given the GPU addresses Spark assigned (null or empty: none). */
    static String choose(String requested, String[] gpuAddresses) {
        String d = requested.trim();
        if (!d.equalsIgnoreCase("opencl") || gpuAddresses == null || gpuAddresses.length == 0) {
            return d;
        }
        String address = gpuAddresses[0].trim();
        if (!address.matches("\\d+")) {
            throw new IllegalArgumentException("--device opencl: Spark assigned this task GPU '" + address + "', not an "
                    + "OpenCL device number (make the GPU discovery script print the numbers `unseen devices` lists)");
        }
        return "opencl:" + address;
    }

    /** The device for the running task. */
    static String forThisTask(String requested) {
        TaskContext tc = TaskContext.get();
        ResourceInformation gpu = tc == null ? null : tc.resourcesJMap().get("gpu");
        return choose(requested, gpu == null ? null : gpu.addresses());
    }
}
