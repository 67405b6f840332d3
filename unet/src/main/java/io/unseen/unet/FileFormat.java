package io.unseen.unet;

import io.unseen.engine.io.TensorFormatException;

import java.nio.file.Path;
import java.util.Map;

/**
 * The metadata keys of the safetensors files Unseen writes, and which kind of file each makes, in one place: a
 * converted model (written by the converter and by fine-tuning, read by the UNet loader and the pipeline), a domain
 * prior (written and read by the diffusion module's {@code DomainPrior}) and a fine-tuning checkpoint (its
 * {@code TrainingState}). Every writer and reader names its keys from here, so a file given where another kind is
 * expected is refused in one line that says what it is.
 */
public final class FileFormat {
    /** A converted model's format version; this code reads version {@value #MODEL_FORMAT_VERSION}. */
    public static final String MODEL_FORMAT_KEY = "unseen.format";
    public static final String MODEL_FORMAT_VERSION = "1";
    /** A converted model's config, JSON (ModelConfig). */
    public static final String MODEL_KEY = "unseen.model";
    /** A converted model's noise schedule, JSON. */
    public static final String SCHEDULE_KEY = "unseen.schedule";
    /** Where a converted model came from: the source file, the preset that filled in its config, the zip entry. */
    public static final String SOURCE_KEY = "unseen.source", PRESET_KEY = "unseen.preset",
            SOURCE_ENTRY_KEY = "unseen.source_entry";
    /** A domain prior's settings and statistics, JSON. */
    public static final String PRIOR_KEY = "unseen.prior";
    /** A domain prior's format version (priors written before it carried the model's key instead). */
    public static final String PRIOR_FORMAT_KEY = "unseen.prior_format";
    public static final String PRIOR_FORMAT_VERSION = "1";
    /** A fine-tuned model's record: the model it started from, the images, the recipe (JSON). */
    public static final String FINE_TUNING_KEY = "unseen.fine_tuning";
    /** A fine-tuning checkpoint's step, settings and recent losses (JSON): the run's state, not a model. */
    public static final String TRAINING_STATE_KEY = "unseen.training_state";

    /** What a file is, by its metadata. */
    public enum Kind { MODEL, PRIOR, TRAINING_STATE, OTHER }

    private FileFormat() {
    }

    public static Kind kind(Map<String, String> metadata) {
        if (metadata.containsKey(PRIOR_KEY) || metadata.containsKey(PRIOR_FORMAT_KEY)) {
            return Kind.PRIOR;
        }
        if (metadata.containsKey(TRAINING_STATE_KEY)) {
            return Kind.TRAINING_STATE;
        }
        if (metadata.containsKey(MODEL_FORMAT_KEY) || metadata.containsKey(MODEL_KEY)) {
            return Kind.MODEL;
        }
        return Kind.OTHER;
    }

    /** Refuses a domain prior where a model is expected. */
    public static void refusePrior(Path file, Map<String, String> metadata) throws TensorFormatException {
        if (kind(metadata) == Kind.PRIOR) {
            throw new TensorFormatException(file, "this is a domain prior (made by `unseen invert`), not a model: give "
                    + "it as --prior, and the converted model as --model");
        }
    }

    /** Refuses a domain prior or a fine-tuning checkpoint where a model is expected, saying which it is. */
    public static void refuseNonModel(Path file, Map<String, String> metadata) throws TensorFormatException {
        refusePrior(file, metadata);
        if (kind(metadata) == Kind.TRAINING_STATE) {
            throw new TensorFormatException(file, "this is a fine-tuning checkpoint (made by `unseen finetune "
                    + "--checkpoint`), not a model: give it as --checkpoint, and the fine-tuned model (--output) as "
                    + "--model");
        }
    }

    /** Refuses a converted model where a domain prior is expected. */
    public static void refuseModel(Path file, Map<String, String> metadata) throws TensorFormatException {
        if (kind(metadata) == Kind.MODEL) {
            throw new TensorFormatException(file, "this is a model, not a domain prior: make a prior from it with "
                    + "`unseen invert --model " + file.getFileName() + " --images DIR --output PRIOR.safetensors`");
        }
    }
}
