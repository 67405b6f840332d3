package io.unseen.cli;

import io.unseen.diffusion.Ddim;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;
import io.unseen.diffusion.TimestepGrid;
import io.unseen.diffusion.analysis.AnalysisReport;
import io.unseen.diffusion.images.ImageSet;
import io.unseen.engine.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
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
        FrozenModel model = modelOptions.load();
        DomainPrior unseen = DomainPrior.load(prior);
        CommandChecks.priorMatchesModel(unseen, prior, model);
        Tensor own = ownLatents(model, unseen);
        AnalysisReport report = new AnalysisReport(output);
        Map<String, Object> m = report.addLatentComparison("unseen domain", unseen.latents(), "model's domain", own);
        Path html = report.write("Unseen: latent analysis at t0 = " + unseen.t0());
        System.err.println("analysis: " + m);
        System.out.println(html);
        return 0;
    }

    private Tensor ownLatents(FrozenModel model, DomainPrior unseen) throws java.io.IOException {
        if (CliPaths.hasExtension(inDomain, ".safetensors")) {
            DomainPrior p = DomainPrior.load(inDomain);
            CommandChecks.priorMatchesModel(p, inDomain, model);
            if (p.t0() != unseen.t0()) {
                throw new IllegalArgumentException(inDomain + ": inverted to t0 = " + p.t0() + " but " + prior + " to t0 = "
                        + unseen.t0() + "; compare latents at the same depth");
            }
            return p.latents();
        }
        ImageSet set = ImageSet.load(inDomain, model.unet().inChannels(), model.unet().resolution(), System.err::println);
        TimestepGrid grid = TimestepGrid.of(unseen.t0(), unseen.steps(), model.schedule());
        return new Ddim(model.unet(), model.schedule(), modelOptions.batchSize()).invert(set.tensor(), grid,
                new CliProgress(System.err), null);
    }
}
