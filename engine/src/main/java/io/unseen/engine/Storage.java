package io.unseen.engine;

/**
 * Where a tensor's values live: a host array ({@link HostStorage}, read by the {@code cpu} and {@code reference}
 * backends and by host-only code), or memory a device backend owns. Values cross between the two only through the
 * owning backend's {@code upload} and {@code download} ({@link Tensor#toHost()}); reading a device tensor's values any
 * other way is an error, never a silent transfer.
 */
public abstract class Storage {

    /** How many floats this storage holds. */
    public abstract int size();

    /** True for a host array. */
    public abstract boolean isHost();

    /** The host array; device storage throws, naming its device and how to read the values. */
    public abstract float[] hostArray();

    /** Where the values live, for messages: "host" or the device's name. */
    public abstract String location();

    /**
     * The values of {@code count} floats from {@code offset} as a new host tensor of {@code shape}: a copy for
     * device storage (the one explicit door from device to host).
     */
    protected abstract Tensor download(int offset, int[] shape);
}
