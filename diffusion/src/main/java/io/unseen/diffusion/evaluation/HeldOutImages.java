package io.unseen.diffusion.evaluation;

import io.unseen.diffusion.Seeds;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Real images of each class that the method never saw, handed out in a fixed order and never twice: successive
 * {@link #take} calls for a class return disjoint sets. Two sources: the Fashion-MNIST test split (images of the
 * class in index order, minus the given excluded indices, i.e. the bundled references), or a folder holding
 * {@code <class>.npy} (float32 [N, 1, 32, 32] in [-1, 1]) or a {@code <class>/} folder of images per class.
 * {@link #shuffled} hands them out in a seeded random order instead: the evaluation's splits are then random draws
 * of the class, as its tests assume (in index order they are not: the first 256 sneakers of the test split are
 * classified right 98.8% of the time, the rest 94.8%).
 */
public final class HeldOutImages {
    private static final Pattern TEST_INDEX = Pattern.compile("test(\\d+)\\.png", Pattern.CASE_INSENSITIVE);

    /** Loads all candidate images of one class. */
    private interface Loader {
        Pool load(String className) throws IOException;
    }

    private static final class Pool {
        final Tensor images;
        final List<String> names;
        int next;

        Pool(Tensor images, List<String> names) {
            this.images = images;
            this.names = names;
        }
    }

    /** Images taken, with where each came from (e.g. "t10k[1234]"). */
    public record Taken(Tensor images, List<String> names) {
    }

    private final String description;
    private final Loader loader;
    private final Map<String, Pool> pools = new HashMap<>();
    private final Long seed;

    private HeldOutImages(String description, Loader loader, Long seed) {
        this.description = description;
        this.loader = loader;
        this.seed = seed;
    }

    private HeldOutImages(String description, Loader loader) {
        this(description, loader, null);
    }

    /**
     * The same images handed out in a random order per class, a permutation drawn from {@code seed} and the class
     * name (fresh: nothing taken yet).
     */
    public HeldOutImages shuffled(long seed) {
        return new HeldOutImages(description.replace(" in index order", "") + ", in a random order (seed " + seed
                + ")", loader, seed);
    }

    /** Where the images come from, for the results. */
    public String description() {
        return description;
    }

    /** Test images of the Fashion-MNIST split, excluding the indices in {@code exclude}. */
    public static HeldOutImages fromFashionMnist(FashionMnist split, String splitName, Set<Integer> exclude) {
        String what = "Fashion-MNIST " + splitName + " images in index order, excluding the " + exclude.size()
                + " bundled reference images";
        return new HeldOutImages(what, className -> {
            List<Integer> idx = new ArrayList<>();
            for (int i : split.indicesOf(FashionMnist.labelOf(className))) {
                if (!exclude.contains(i)) {
                    idx.add(i);
                }
            }
            List<String> names = new ArrayList<>();
            for (int i : idx) {
                names.add(splitName + "[" + i + "]");
            }
            return new Pool(split.images(idx), names);
        });
    }

    /** {@code dir/<class>.npy} or {@code dir/<class>/} (a folder of 32x32 grayscale images), in file order. */
    public static HeldOutImages fromDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + ": --held-out-from must be a folder holding <class>.npy or <class>/ per class");
        }
        return new HeldOutImages("images from " + dir, className -> {
            Path npy = dir.resolve(className + ".npy"), folder = dir.resolve(className);
            Path src = Files.isRegularFile(npy) ? npy : folder;
            if (!Files.exists(src)) {
                throw new IOException(dir + ": no held-out images of class '" + className + "': add " + npy.getFileName()
                        + " (float32 [N,1,32,32] in [-1,1]) or a folder " + folder.getFileName() + "/ of images");
            }
            ImageSet set = ImageSet.load(src, 1, FashionMnist.PADDED, m -> { });
            List<String> names = new ArrayList<>();
            for (String n : set.names()) {
                names.add(className + "/" + n);
            }
            return new Pool(set.tensor(), names);
        });
    }

    /** The next {@code count} unused images of {@code className}. */
    public Taken take(String className, int count) throws IOException {
        Pool p = pools.get(className);
        if (p == null) {
            p = loader.load(className);
            if (seed != null) {
                p = shuffle(p, Seeds.random(seed, Seeds.HELD_OUT, className.hashCode()));
            }
            pools.put(className, p);
        }
        int n = p.images.dim(0), left = n - p.next;
        if (count > left) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "only %d unused held-out images of class '%s' "
                    + "are left in %s (%d in all), %d needed: lower --held-out, --count or --domain-count", left, className,
                    description, n, count));
        }
        int per = p.images.numel() / Math.max(1, n);
        Tensor t = Tensor.zeros(count, p.images.dim(1), p.images.dim(2), p.images.dim(3));
        System.arraycopy(p.images.data(), p.next * per, t.data(), 0, count * per);
        List<String> names = List.copyOf(p.names.subList(p.next, p.next + count));
        p.next += count;
        return new Taken(t, names);
    }

    /** The pool's images and names in a random order (Fisher-Yates). */
    private static Pool shuffle(Pool p, java.util.Random rng) {
        int n = p.images.dim(0), per = p.images.numel() / Math.max(1, n);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        Tensor t = Tensor.zeros(p.images.shape());
        List<String> names = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            System.arraycopy(p.images.data(), order[i] * per, t.data(), i * per, per);
            names.add(p.names.get(order[i]));
        }
        return new Pool(t, names);
    }

    /**
     * The Fashion-MNIST test index of a bundled reference image named {@code testNNNNN.png}
     * (reference/export_demo_references.py names them so); -1 when the name has another form.
     */
    public static int testIndexOf(String fileName) {
        Matcher m = TEST_INDEX.matcher(fileName);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }
}
