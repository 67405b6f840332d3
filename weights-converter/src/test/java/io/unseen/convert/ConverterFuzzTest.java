package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static io.unseen.convert.Fixtures.convert;
import static io.unseen.convert.Fixtures.resource;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutates the bytes of real checkpoints (torch zip and legacy, safetensors) 2500 times with a fixed seed and
 * proves that opening and converting them only ever succeeds or throws {@link TensorFormatException}: never another
 * exception, an error, or a hang. Mutations favour the structure (the pickle at the start of a legacy file, the
 * pickle entry and central directory of a zip, the JSON header of a safetensors file) over the tensor bytes.
 */
class ConverterFuzzTest {

    private static final long SEED = 20240299L;
    private static final int ITERATIONS = 2500;

    @TempDir
    Path dir;

    @Test
    void mutatedCheckpointsOnlyEverFailWithTensorFormatException() throws IOException {
        List<Path> sources = List.of(convert("ddpm_legacy.ckpt"), convert("adm_views.pt"),
                convert("diffusers_old/diffusion_pytorch_model.bin"), convert("select_ddim.pth"),
                convert("select_nested.pt"), resource("torch/views_legacy.pt"), resource("torch/views_zip.pt"),
                resource("torch/mixed_legacy.pt"), convert("diffusers_pipeline/unet/diffusion_pytorch_model"
                        + ".safetensors"));
        byte[][] originals = new byte[sources.size()][];
        for (int i = 0; i < originals.length; i++) {
            originals[i] = Files.readAllBytes(sources.get(i));
        }
        ConvertOptions options = ConvertOptions.none().withHeads(2, null).withImageSize(16);
        // thousands of mutated copies: a memory-backed folder where there is one (writes to disk dominate otherwise)
        Path shm = Path.of("/dev/shm");
        Path scratch = Files.isDirectory(shm) && Files.isWritable(shm)
                ? Files.createTempDirectory(shm, "unseen-fuzz") : dir;
        try {
            run(sources, originals, options, scratch);
        } finally {
            if (!scratch.equals(dir)) {
                for (String f : Fixtures.list(scratch)) {
                    Files.delete(scratch.resolve(f));
                }
                Files.delete(scratch);
            }
        }
    }

    private static void run(List<Path> sources, byte[][] originals, ConvertOptions options, Path scratch)
            throws IOException {
        Random random = new Random(SEED);
        int refused = 0, converted = 0;
        for (int it = 0; it < ITERATIONS; it++) {
            int which = random.nextInt(originals.length);
            String name = sources.get(which).getFileName().toString();
            byte[] bytes = mutate(originals[which], random, name.endsWith(".safetensors"));
            Path file = scratch.resolve("fuzz" + (it % 4) + suffix(name));
            Files.write(file, bytes);
            try {
                Converter.convert(file, options, line -> { });
                converted++;
            } catch (TensorFormatException e) {
                assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
                assertFalse(e.getMessage().matches("(?s).*(Exception|java\\.[a-z]).*"), "a Java name in: " + e.getMessage());
                refused++;
            } catch (Throwable t) {
                Path keep = Path.of("target", "fuzz-failure" + suffix(name));
                Files.write(keep, bytes);
                fail("iteration " + it + " (seed " + SEED + ", mutated " + name + ", saved as " + keep
                        + ") threw " + t, t);
            }
        }
        assertTrue(refused > ITERATIONS / 2 && converted > 0, "refused " + refused + ", converted " + converted);
    }

    private static String suffix(String name) {
        return name.substring(name.lastIndexOf('.'));
    }

    /** One to four byte edits, truncations or splices, mostly near the start or the end of the file. */
    static byte[] mutate(byte[] original, Random r, boolean safetensors) {
        byte[] b = original.clone();
        int edits = 1 + r.nextInt(4);
        for (int e = 0; e < edits && b.length > 0; e++) {
            int at = position(b.length, r, safetensors);
            switch (r.nextInt(8)) {
                case 0:
                    b = Arrays.copyOf(b, at); // truncate
                    break;
                case 1: { // delete a few bytes
                    int n = Math.min(1 + r.nextInt(16), b.length - at);
                    byte[] c = new byte[b.length - n];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + n, c, at, b.length - at - n);
                    b = c;
                    break;
                }
                case 2: { // insert random bytes
                    int n = 1 + r.nextInt(8);
                    byte[] c = new byte[b.length + n];
                    System.arraycopy(b, 0, c, 0, at);
                    for (int i = 0; i < n; i++) {
                        c[at + i] = (byte) r.nextInt(256);
                    }
                    System.arraycopy(b, at, c, at + n, b.length - at);
                    b = c;
                    break;
                }
                case 3: // an interesting value: a length or count pushed to an extreme
                    b[Math.min(at, b.length - 1)] = (byte) new int[]{0, 0xFF, 0x7F, 0x80, 0x01}[r.nextInt(5)];
                    break;
                case 4: // an ASCII digit or bracket, to bend JSON and text opcodes
                    b[Math.min(at, b.length - 1)] = (byte) "0123456789[]{},:\"-".charAt(r.nextInt(18));
                    break;
                default: // flip bits
                    b[Math.min(at, b.length - 1)] ^= (byte) (1 << r.nextInt(8));
            }
        }
        return b;
    }

    private static int position(int length, Random r, boolean safetensors) {
        int p = r.nextInt(10);
        int head = safetensors ? 4096 : 2048;
        if (p < 5) {
            return r.nextInt(Math.min(length, head)); // pickle / zip local header and data.pkl / JSON header
        }
        if (p < 9 && !safetensors) {
            return Math.max(0, length - 1 - r.nextInt(Math.min(length, 1024))); // zip central directory, legacy tail
        }
        return r.nextInt(length);
    }
}
