package io.unseen.cli;

import io.unseen.api.Analysis;
import io.unseen.api.Unseen;
import io.unseen.diffusion.DomainPrior;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "analyze", description = "Compare an unseen domain's inverted latents with the model's own domain: "
        + "normality (KS), separability, distance/angle/norm histograms, in one HTML report.")
final class AnalyzeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prior", required = true, paramLabel = "PRIOR.safetensors", description = "The unseen domain's prior.")
    Path prior;

    @Option(names = "--in-domain", required = true, paramLabel = "DIR|PRIOR.safetensors",
            description = "Images of the model's own domain (inverted with the prior's t0 and steps) or their prior.")
    Path inDomain;

    @Option(names = "--output", required = true, paramLabel = "REPORT_DIR")
    Path output;

    @Override
    public Integer call() throws Exception {
        CommandChecks.writableFolder("--output", output);
        CommandChecks.notTheInput("--output", output, "--in-domain", inDomain);
        try (Unseen model = modelOptions.open()) {
            DomainPrior unseen = DomainPrior.load(prior);
            CommandChecks.priorMatchesModel(unseen, prior, model);
            Analysis a;
            if (CliPaths.hasExtension(inDomain, ".safetensors")) {
                DomainPrior own = DomainPrior.load(inDomain);
                CommandChecks.priorMatchesModel(own, inDomain, model);
                if (own.t0() != unseen.t0()) {
                    throw new IllegalArgumentException(inDomain + ": inverted to t0 = " + own.t0() + " but " + prior
                            + " to t0 = " + unseen.t0() + "; compare latents at the same depth");
                }
                a = model.analyze(unseen, own, output);
            } else {
                a = model.analyze(unseen, inDomain, modelOptions.batchSize(), output, new CliProgress(System.err));
            }
            System.err.println("analysis: " + a.numbers());
            System.out.println(a.report());
        }
        return 0;
    }
}
