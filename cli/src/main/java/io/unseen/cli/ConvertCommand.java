package io.unseen.cli;

import io.unseen.api.Unseen;
import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Presets;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.concurrent.Callable;

/** {@code unseen convert SRC -o OUT.safetensors}: a DDPM or ADM checkpoint to our canonical safetensors file. */
@Command(name = "convert", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Convert a DDPM or ADM checkpoint to unseen's format: one safetensors file of F32 tensors with the"
                + " model config and noise schedule in its metadata.",
                "SRC is a torch .ckpt/.pt/.pth/.bin (zip or legacy; a state_dict or a training checkpoint holding"
                        + " one), a .safetensors file, or a diffusers folder (config.json with"
                        + " diffusion_pytorch_model.safetensors or .bin, or a pipeline folder with unet/ and"
                        + " scheduler/).",
                "The architecture is read from the tensor shapes; give what the weights cannot show (heads, qkv"
                        + " order, schedule) with the options below or a preset."})
final class ConvertCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SRC", description = "the checkpoint file or diffusers folder")
    Path source;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.safetensors",
            description = "the file to write (written whole or not at all)")
    Path output;

    @Option(names = "--preset", paramLabel = "NAME", completionCandidates = PresetNames.class,
            description = "a public checkpoint's settings: ${COMPLETION-CANDIDATES}")
    String preset;

    @Option(names = "--arch", paramLabel = "ddpm|adm", description = "the architecture the checkpoint must have")
    String arch;

    @ArgGroup(exclusive = true)
    Heads heads = new Heads();

    static final class Heads {
        @Option(names = "--num-heads", paramLabel = "N", description = "ADM attention heads")
        Integer numHeads;

        @Option(names = "--num-head-channels", paramLabel = "N", description = "ADM channels per attention head")
        Integer numHeadChannels;
    }

    @Option(names = "--num-heads-upsample", paramLabel = "N",
            description = "ADM heads in the upsampling blocks (openai's num_heads_upsample)")
    Integer numHeadsUpsample;

    @Option(names = "--attention-order", paramLabel = "legacy|new",
            description = "ADM qkv order: legacy (openai's default) or new (use_new_attention_order)")
    String attentionOrder;

    @Option(names = "--schedule", paramLabel = "linear|cosine", description = "the training noise schedule")
    String schedule;

    @Option(names = "--num-timesteps", paramLabel = "T", description = "training steps (default 1000 for linear)")
    Integer numTimesteps;

    @Option(names = "--rescale-timesteps", arity = "1", paramLabel = "true|false",
            description = "whether the model is fed t * 1000 / T (improved-diffusion's rescale_timesteps)")
    Boolean rescaleTimesteps;

    @Option(names = "--image-size", paramLabel = "N",
            description = "training image size (names the attention resolutions; not stored in the weights)")
    Integer imageSize;

    @Option(names = "--select", paramLabel = "KEY",
            description = "the checkpoint entry holding the weights, e.g. ema or state_dict (default: EMA if any)")
    String select;

    @Override
    public Integer call() throws IOException {
        ConvertOptions options = new ConvertOptions(preset, arch, heads.numHeads, heads.numHeadChannels,
                numHeadsUpsample, attentionOrder, schedule, numTimesteps, rescaleTimesteps, imageSize, select);
        CommandChecks.writableFile("--output", output);
        PrintWriter err = spec.commandLine().getErr();
        Unseen.convert(source, output, options, line -> {
            err.println("convert: " + line);
            err.flush();
        });
        return 0;
    }

    /** The preset names, for help and shell completion. */
    static final class PresetNames implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return Presets.all().keySet().iterator();
        }
    }
}
