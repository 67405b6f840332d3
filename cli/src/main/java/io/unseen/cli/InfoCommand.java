package io.unseen.cli;

import io.unseen.convert.ConvertOptions;
import io.unseen.convert.Info;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code unseen info FILE}: what a weights file holds and whether it is complete. Reads headers only. */
@Command(name = "info", sortOptions = false, mixinStandardHelpOptions = true,
        description = {"Show a weights file's architecture, config, schedule, parameter count and dtypes, and every"
                + " tensor that is missing, unexpected or of the wrong shape.",
                "FILE is a converted .safetensors file or anything `unseen convert` reads (its config is then"
                        + " inferred as convert would)."})
final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FILE", description = "a weights file or diffusers folder")
    Path file;

    @Option(names = "--preset", paramLabel = "NAME", completionCandidates = ConvertCommand.PresetNames.class,
            description = "check against a preset: ${COMPLETION-CANDIDATES}")
    String preset;

    @Option(names = "--image-size", paramLabel = "N", description = "training image size")
    Integer imageSize;

    @Option(names = "--select", paramLabel = "KEY", description = "the checkpoint entry holding the weights")
    String select;

    @Override
    public Integer call() throws IOException {
        ConvertOptions options = ConvertOptions.none().withImageSize(imageSize).withSelect(select);
        if (preset != null) {
            options = options.withPreset(preset);
        }
        PrintWriter out = spec.commandLine().getOut();
        for (String line : Info.describe(file, options)) {
            out.println(line);
        }
        out.flush();
        return 0;
    }
}
