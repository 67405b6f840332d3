package io.unseen.unet;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What a UNet holds in its backend's memory, weights apart from compute (ggml's split): the prepared weights, held
 * from construction to {@link #close}; the activations and scratch, planned by a pass that runs no op and allocated
 * all at once for one input shape ({@link #reserve}); and the timesteps of the current call. It also knows where
 * each parameter of the model file went among the prepared weights ({@link #bind}), so that new values can be
 * written there in place ({@link #setParameters}).
 */
final class ModelMemory {
    final Ops ops;
    final Activations activations;
    private final Activations.Buffer timesteps;
    private final List<Tensor> weights = new ArrayList<>();
    /** Each parameter of the model file (by its name), and where its values went among the prepared weights. */
    private final Map<String, Parameter> parameters = new LinkedHashMap<>();
    private MemoryPlan reserved;
    private boolean closed;

    ModelMemory(Backend backend) {
        this.activations = new Activations(backend);
        this.ops = new Ops(backend, activations);
        this.timesteps = activations.own();
    }

    /** Takes ownership of a prepared weight (given back on close). */
    Tensor ownWeight(Tensor prepared) {
        if (prepared != null) {
            weights.add(prepared);
        }
        return prepared;
    }

    /**
     * A parameter of the model file, as the model holds it: its shape in the file, and the pieces of prepared
     * weights its values went to (one, unless the model fused it with others or split it).
     */
    private record Parameter(int[] shape, List<Piece> pieces) {
    }

    /**
     * {@code count} values of a parameter from its offset {@code from} live in prepared weight {@code prepared} from
     * offset {@code at}, each plus {@code plus} (ADM's scale-shift norm folds the "1 +" of (1 + scale) into a bias).
     */
    private record Piece(Tensor prepared, int at, int from, int count, float plus) {
    }

    /**
     * Records that values [from, from + count) of parameter {@code name} (shape {@code shape} in the model file) were
     * prepared into {@code prepared} at offset {@code at}, with {@code plus} added.
     */
    void bind(String name, int[] shape, Tensor prepared, int at, int from, int count, float plus) {
        Parameter p = parameters.computeIfAbsent(name, n -> new Parameter(shape.clone(), new ArrayList<>()));
        if (!Arrays.equals(p.shape, shape) || from < 0 || count < 0 || from + count > Tensor.checkedNumel(shape)
                || at < 0 || at + count > prepared.numel()) {
            throw new IllegalStateException("parameter '" + name + "': a piece [" + from + ", " + (from + count)
                    + ") does not fit " + Arrays.toString(shape) + " or " + prepared + " (a bug in the model's layers)");
        }
        p.pieces.add(new Piece(prepared, at, from, count, plus));
    }

    /** {@link #bind} of a whole parameter prepared as one weight. */
    void bind(String name, Tensor host, Tensor prepared) {
        bind(name, host.shape(), prepared, 0, 0, host.numel(), 0f);
    }

    /**
     * Overwrites the named parameters (any of them, by the model file's names and shapes, host tensors of finite
     * values) in the prepared weights, in place; see {@link UNet#setParameters}. Everything is checked before
     * anything is written.
     */
    void setParameters(String arch, Map<String, Tensor> values) {
        if (closed) {
            throw new IllegalStateException(arch + " UNet: the model was closed");
        }
        Map<Tensor, Integer> covered = new IdentityHashMap<>();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Parameter p = parameters.get(e.getKey());
            Tensor v = e.getValue();
            if (p == null) {
                throw new IllegalArgumentException(arch + " UNet: no parameter '" + e.getKey() + "' (give the model "
                        + "file's parameter names, e.g. '" + parameters.keySet().iterator().next() + "')");
            }
            if (v == null || !v.hasShape(p.shape) || !v.isHost()) {
                throw new IllegalArgumentException(arch + " UNet: parameter '" + e.getKey() + "' must be a host "
                        + "tensor of shape " + Arrays.toString(p.shape).replace(" ", "") + ", got " + v);
            }
            float[] a = v.hostArray();
            for (int i = 0; i < v.numel(); i++) {
                if (!Float.isFinite(a[v.offset() + i])) {
                    throw new IllegalArgumentException(arch + " UNet: parameter '" + e.getKey() + "' value " + i
                            + " is " + a[v.offset() + i] + " (the weights must be finite numbers)");
                }
            }
            for (Piece piece : p.pieces) {
                covered.merge(piece.prepared, piece.count, Integer::sum);
            }
        }
        // each prepared weight once: straight from the given tensor when it is the whole weight as it is, else
        // assembled (patched into its current values when only some of its pieces are given)
        Map<Tensor, float[]> assembled = new IdentityHashMap<>();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            List<Piece> pieces = parameters.get(e.getKey()).pieces;
            Piece only = pieces.get(0);
            if (pieces.size() == 1 && only.count == only.prepared.numel() && only.plus == 0f) {
                ops.backend.rewriteWeight(only.prepared, e.getValue());
                covered.remove(only.prepared);
            }
        }
        for (Map.Entry<Tensor, Integer> c : covered.entrySet()) {
            Tensor w = c.getKey();
            assembled.put(w, c.getValue() == w.numel() ? new float[w.numel()] : w.toHost().copy().data());
        }
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Tensor v = e.getValue();
            float[] src = v.hostArray();
            for (Piece piece : parameters.get(e.getKey()).pieces) {
                float[] dst = assembled.get(piece.prepared);
                if (dst == null) {
                    continue; // rewritten whole above
                }
                if (piece.plus == 0f) {
                    System.arraycopy(src, v.offset() + piece.from, dst, piece.at, piece.count);
                } else {
                    for (int i = 0; i < piece.count; i++) {
                        dst[piece.at + i] = src[v.offset() + piece.from + i] + piece.plus;
                    }
                }
            }
        }
        for (Map.Entry<Tensor, float[]> a : assembled.entrySet()) {
            ops.backend.rewriteWeight(a.getKey(), Tensor.of(a.getValue(), a.getKey().numel()));
        }
    }

    /** The parameters' names and shapes in the model file, in the order the model took them. */
    Map<String, int[]> parameterShapes() {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            shapes.put(e.getKey(), e.getValue().shape.clone());
        }
        return shapes;
    }

    /**
     * The memory a pass of {@code batch} images of {@code height} x {@code width} needs, found by running
     * {@code pass} with the ops checking shapes only; nothing is allocated and the current reservation stays.
     */
    MemoryPlan plan(int batch, int height, int width, Supplier<Tensor> pass) {
        return describe(batch, height, width, layout(pass));
    }

    /** The activations of {@code pass}, laid out by a pass whose ops run nothing. */
    private Activations.Layout layout(Supplier<Tensor> pass) {
        requireOpen();
        activations.startPlan();
        ops.planning(true);
        Tensor result;
        try {
            result = pass.get();
        } catch (RuntimeException | Error e) {
            activations.cancelPlan();
            throw e;
        } finally {
            ops.planning(false);
        }
        return activations.endPlan(result);
    }

    private MemoryPlan describe(int batch, int height, int width, Activations.Layout layout) {
        return new MemoryPlan(batch, height, width, weightBytes(), 4 * layout.floats(), layout.blocks());
    }

    /**
     * Bytes the prepared weights hold now, with the forms a plan made of them (the pass just planned prepared every
     * convolution for its shape: on cpu, the Winograd transforms of those that run as Winograd's).
     */
    private long weightBytes() {
        long bytes = 0;
        for (Tensor w : weights) {
            bytes += ops.backend.preparedBytes(w);
        }
        return bytes;
    }

    /**
     * Plans and allocates the memory of passes of this shape (nothing to do when it is already reserved), giving
     * back the previous reservation first.
     */
    MemoryPlan reserve(int batch, int height, int width, Supplier<Tensor> pass) {
        if (reserved != null && reserved.batch() == batch && reserved.height() == height
                && reserved.width() == width) {
            return reserved;
        }
        Activations.Layout layout = layout(pass);
        MemoryPlan plan = describe(batch, height, width, layout);
        reserved = null;
        try {
            activations.allocate(layout);
        } catch (RuntimeException e) {
            activations.release();
            throw e;
        }
        reserved = plan;
        return plan;
    }

    /** The current reservation, or null. */
    MemoryPlan reserved() {
        return reserved;
    }

    /** Fails unless the model is open and x lives in the backend's memory. */
    void checkForward(String arch, Tensor x) {
        if (closed) {
            throw new IllegalStateException(arch + " UNet: the model was closed");
        }
        if (!ops.backend.isResident(x)) {
            throw new IllegalArgumentException(arch + " UNet: input " + x + " is not in the " + ops.backend.name()
                    + " backend's memory; upload it first (Backend.upload)");
        }
    }

    /** The call's timesteps [N] in the backend's memory (the one small upload of a forward pass). */
    Tensor timesteps(float[] t) {
        Tensor dev = timesteps.get(t.length);
        ops.run().copy(Tensor.of(t, t.length), dev);
        return dev;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the model was closed");
        }
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        activations.release();
        reserved = null;
        for (Tensor w : weights) {
            ops.backend.release(w);
        }
        weights.clear();
        parameters.clear();
    }
}
