package io.unseen.cli;

import io.unseen.api.Unseen;
import io.unseen.diffusion.DomainPrior;
import io.unseen.engine.io.Floats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks shared by several commands. The flag checks run before any work (before a model is read), so a bad flag
 * or an unwritable output costs nothing and leaves nothing behind.
 */
final class CommandChecks {
    private CommandChecks() {
    }

    /** A prior made with the loaded model; the message names the prior's file. */
    static void priorMatchesModel(DomainPrior prior, Path priorFile, Unseen model) {
        prior.requireMadeWith(model.model(), priorFile);
    }

    /** A float flag that must be finite and within [min, max]. */
    static void inRange(String flag, double value, double min, double max) {
        if (!(value >= min && value <= max)) { // false for NaN
            throw new IllegalArgumentException(flag + ": " + value + " is outside [" + min + ", " + max + "] (give a "
                    + "finite number in that range)");
        }
    }

    /** A float flag that must be a finite number above 0. */
    static void positive(String flag, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new IllegalArgumentException(flag + ": " + value + " is not a finite number > 0 (give e.g. 1)");
        }
    }

    /** An int flag that must be at least {@code min}. */
    static void atLeast(String flag, long value, long min, String why) {
        if (value < min) {
            throw new IllegalArgumentException(flag + ": " + value + " is too small (give at least " + min + ": " + why + ")");
        }
    }

    /**
     * Refuses an output that is the input {@code inputFlag} names: the same file (or folder) by identity, through
     * links and different spellings, not by name. Writing it would destroy the input.
     */
    static void notTheInput(String outputFlag, Path output, String inputFlag, Path input) throws IOException {
        if (input != null && Files.exists(output) && Files.exists(input) && Files.isSameFile(output, input)) {
            throw new IllegalArgumentException(outputFlag + " " + output + ": is the same file as " + inputFlag + " "
                    + input + " (writing it would destroy the input; choose another output)");
        }
    }

    /** An output file that can be written: not a folder, its folder a writable folder or creatable. */
    static void writableFile(String flag, Path output) {
        if (Files.isDirectory(output)) {
            throw new IllegalArgumentException(flag + " " + output + ": is a folder (give a file name)");
        }
        Path parent = output.toAbsolutePath().getParent();
        if (parent != null) {
            creatableFolder(flag, output, parent);
        }
    }

    /** An output folder that can be written: an existing writable folder, or one that can be created. */
    static void writableFolder(String flag, Path output) {
        creatableFolder(flag, output, output.toAbsolutePath());
    }

    /** {@code folder} exists as a writable folder, or its nearest existing ancestor is one (so it can be created). */
    private static void creatableFolder(String flag, Path output, Path folder) {
        Path p = folder;
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            return; // nothing exists above it: let the write report what the system says
        }
        if (!Files.isDirectory(p)) {
            throw new IllegalArgumentException(flag + " " + output + ": " + p + " exists and is not a folder (choose "
                    + "another output path)");
        }
        if (!Files.isWritable(p)) {
            throw new IllegalArgumentException(flag + " " + output + ": folder " + p + " is not writable (choose a "
                    + "folder you can write to)");
        }
    }

    /** An output whose name must end in one of {@code extensions} (lower case, with the dot). */
    static void extension(String flag, Path output, String what, String... extensions) {
        for (String e : extensions) {
            if (CliPaths.hasExtension(output, e)) {
                return;
            }
        }
        throw new IllegalArgumentException(flag + " " + output + ": must end in " + String.join(" or ", extensions)
                + " (" + what + ")");
    }

    /**
     * A converted model file, checked by its first bytes before it is read: a PyTorch checkpoint (a zip archive or a
     * pickle) is named as one, with the command that converts it.
     */
    static void convertedModel(String flag, Path model) throws IOException {
        if (!Files.isRegularFile(model)) {
            return; // the reader reports a missing file or a folder
        }
        byte[] head = new byte[9];
        int n;
        try (var in = Files.newInputStream(model)) {
            n = in.readNBytes(head, 0, head.length);
        }
        // safetensors: an 8-byte little-endian header length (far below 2^40) and the header's '{'. Its first byte
        // is 0x80 whenever the length is 128 mod 256, so it is recognized first, not mistaken for a pickle.
        boolean safetensors = n == 9 && head[5] == 0 && head[6] == 0 && head[7] == 0 && head[8] == '{';
        // torch.save: a zip archive, or a pickle (PROTO opcode 0x80, protocol 2 to 5) in the legacy format
        boolean zip = n >= 2 && head[0] == 'P' && head[1] == 'K';
        boolean pickle = n >= 2 && (head[0] & 0xFF) == 0x80 && head[1] >= 2 && head[1] <= 5;
        if (safetensors) {
            return;
        }
        if (zip || pickle) {
            String name = model.getFileName().toString();
            String out = name.replaceAll("\\.[^.]*$", "") + ".safetensors";
            throw new IllegalArgumentException(flag + " " + model + ": is a PyTorch checkpoint, not a converted model "
                    + "(convert it first: unseen convert " + model + " -o " + model.resolveSibling(out) + ")");
        }
    }

    /** Every value of a tensor read from {@code file} is finite. */
    static void finite(Path file, io.unseen.engine.Tensor t) {
        int i = Floats.firstNonFinite(t.data());
        if (i >= 0) {
            throw new IllegalArgumentException(file + ": value " + i + " is " + t.data()[i] + " (the data must be "
                    + "finite numbers; regenerate it)");
        }
    }
}
