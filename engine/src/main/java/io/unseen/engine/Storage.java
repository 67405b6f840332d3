package io.unseen.engine;

/**
 * Where a tensor's values live: a host array ({@link HostStorage}, read by the {@code cpu} and {@code reference}
 * backends and by host-only code), or memory a device backend owns. Values cross between the two only through the
 * owning backend's {@code upload} and {@link #download} ({@link Tensor#toHost()} calls it); reading a device tensor's
 * values any other way is an error, never a silent transfer. A leaf: a storage knows floats, not tensors or backends.
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
     * Copies {@code count} floats from {@code offset} into {@code dst[dstOffset..]}: the one explicit door from device
     * memory to the host (a transfer for device storage).
     */
    protected abstract void download(int offset, float[] dst, int dstOffset, int count);
}
