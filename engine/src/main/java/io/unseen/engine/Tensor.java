package io.unseen.engine;

import java.util.Arrays;

/**
 * A dense float32 tensor: a shape and a contiguous row-major (C order; NCHW for images) array. Tensors are plain
 * value holders; all arithmetic lives in {@link io.unseen.engine.ops.Backend}.
 */
public final class Tensor {
    private final int[] shape;
    private final float[] data;

    private Tensor(int[] shape, float[] data) {
        this.shape = shape;
        this.data = data;
    }

    /** A zero-filled tensor of the given shape. */
    public static Tensor zeros(int... shape) {
        return new Tensor(shape.clone(), new float[checkedNumel(shape)]);
    }

    /** Wraps {@code data} (not copied) with the given shape. */
    public static Tensor of(float[] data, int... shape) {
        long n = checkedNumel(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n
                    + " values but the array has " + data.length);
        }
        return new Tensor(shape.clone(), data);
    }

    /** Product of the dimensions; fails if a dimension is negative or the count exceeds what one array holds. */
    public static int checkedNumel(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape)
                        + " has more elements than one Java array can hold");
            }
        }
        return (int) n;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}; negative {@code i} counts from the end. */
    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public int numel() {
        return data.length;
    }

    /** The backing array, shared, not copied. */
    public float[] data() {
        return data;
    }

    /** The same data under another shape with the same element count. */
    public Tensor reshape(int... newShape) {
        return of(data, newShape);
    }

    public Tensor copy() {
        return new Tensor(shape.clone(), data.clone());
    }

    public boolean sameShape(Tensor other) {
        return Arrays.equals(shape, other.shape);
    }

    public boolean hasShape(int... expected) {
        return Arrays.equals(shape, expected);
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape);
    }
}
