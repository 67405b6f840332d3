package io.unseen.engine;

/** Values in a Java float array: the storage of host tensors and of the {@code cpu} and {@code reference} backends. */
public final class HostStorage extends Storage {
    private final float[] array;

    public HostStorage(float[] array) {
        this.array = array;
    }

    @Override
    public int size() {
        return array.length;
    }

    @Override
    public boolean isHost() {
        return true;
    }

    @Override
    public float[] hostArray() {
        return array;
    }

    @Override
    public String location() {
        return "host";
    }

    @Override
    protected void download(int offset, float[] dst, int dstOffset, int count) {
        System.arraycopy(array, offset, dst, dstOffset, count);
    }
}
