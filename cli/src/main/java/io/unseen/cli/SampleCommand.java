package io.unseen.cli;

import io.unseen.api.Samples;
import io.unseen.api.Sampling;
import io.unseen.api.Unseen;
import io.unseen.commands.SampleOutputs;
import io.unseen.commands.SamplingFlags;
import io.unseen.diffusion.DomainGuidance;
import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.Ilvr;
import io.unseen.diffusion.LatentSampler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "sample", description = "Sample new images of an unseen domain from its prior and decode them with DDIM.")
public final class SampleCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prior", required = true, paramLabel = "PRIOR.safetensors")
    Path prior;

    @Option(names = "--count", required = true, paramLabel = "K")
    int count;

    @Option(names = "--output", required = true, paramLabel = "DIR")
    Path output;

    @Mixin
    SamplingFlags flags;

    @Option(names = "--own-domain-prior", paramLabel = "PRIOR.safetensors",
            description = "For own-slerp: the prior of images of the model's own domain, inverted with the same model "
                    + "to the same t0 (`unseen invert`).")
    Path ownDomainPrior;

    @Option(names = "--ilvr-references", paramLabel = "DIR|FILES",
            description = "Decode with ILVR (Choi et al. 2021): after each step, replace the sample's low frequencies "
                    + "by those of a reference image noised to the same step; sample i follows reference i mod R of "
                    + "these images (a folder, or a .npy [R,C,H,W] in [-1,1]).")
    Path ilvrReferences;

    @Option(names = "--ilvr-factor", defaultValue = "4", paramLabel = "N",
            description = "ILVR's low-pass: means over N x N blocks (default: ${DEFAULT-VALUE}; larger keeps less of "
                    + "the reference). N divides the image side.")
    int ilvrFactor;

    @Option(names = "--ilvr-stop", defaultValue = "0", paramLabel = "T",
            description = "ILVR acts on the decoding steps that end at timestep T or later (default: ${DEFAULT-VALUE}:"
                    + " every step but the last; -1: the final image too; larger: only the noisier steps).")
    int ilvrStop;

    @Option(names = "--ilvr-blend", arity = "0..1", fallbackValue = "" + Ilvr.BLEND_WIDTH, paramLabel = "WIDTH",
            description = "Guide each sample by a blend of two of the ILVR references instead of one: reference "
                    + "i mod R and another, blended about the references' mean and scaled to keep their spread, so no "
                    + "sample keeps one reference's low frequencies (needs at least 2 references). The other's share "
                    + "is drawn within WIDTH about 1/2, a number in [0, 1] (default: " + Ilvr.BLEND_WIDTH + ", shares "
                    + "from 1/4 to 3/4; smaller: every blend nearer an equal mix).")
    Double ilvrBlend;

    @Option(names = "--guide-model", paramLabel = "FT.safetensors",
            description = "Decode with domain guidance: each step's epsilon is eps + W (eps_guide - eps), eps this "
                    + "model's and eps_guide this one's (a model fine-tuned from --model on the unseen domain: the same"
                    + " channels, size and noise schedule). The prior stays --model's. Needs --guide-weight.")
    Path guideModel;

    @Option(names = "--guide-weight", paramLabel = "W",
            description = "Domain guidance's weight: 0 is --model alone, 1 the guide model alone, above 1 further "
                    + "from --model's own domain (a finite number >= 0). Needs --guide-model.")
    Float guideWeight;

    @Override
    public Integer call() throws Exception {
        CommandChecks.writableFolder("--output", output);
        checkGuidance();
        if (ilvrBlend != null && ilvrReferences == null) {
            throw new IllegalArgumentException("--ilvr-blend needs --ilvr-references (the images whose blends guide "
                    + "the decoding)");
        }
        LatentSampler.Method m = flags.method();
        DomainPrior p = DomainPrior.load(prior);
        if (m.needsOwnDomain() != (ownDomainPrior != null)) {
            throw new IllegalArgumentException(m.needsOwnDomain()
                    ? "--method own-slerp needs --own-domain-prior (invert images of the model's own domain to t0 = "
                    + p.t0() + " with `unseen invert`)"
                    : "--own-domain-prior is used only by --method own-slerp (drop it, or choose that method)");
        }
        DomainPrior own = ownDomainPrior == null ? null : DomainPrior.load(ownDomainPrior);
        Sampling settings = flags.sampling(count, p, modelOptions.batchSize());
        try (Unseen unseen = modelOptions.open()) {
            CommandChecks.priorMatchesModel(p, prior, unseen);
            if (own != null) {
                CommandChecks.priorMatchesModel(own, ownDomainPrior, unseen);
            }
            Ilvr ilvr = ilvrReferences == null ? null
                    : unseen.ilvr(ilvrReferences, ilvrFactor, ilvrStop, settings.seed(), ilvrBlend);
            try (DomainGuidance guidance = guideModel == null ? null : unseen.guidance(guideModel, guideWeight)) {
                Samples s = unseen.sample(p, own, settings, ilvr, guidance, output, flags.overwrite(),
                        new CliProgress(System.err));
                return SampleOutputs.report(flags.methodName(), s.summary(), output.toString());
            }
        }
    }

    /** --guide-model and --guide-weight come together, the weight a finite number >= 0: checked before any work. */
    private void checkGuidance() throws java.io.IOException {
        if (guideWeight != null && guideModel == null) {
            throw new IllegalArgumentException("--guide-weight needs --guide-model (a model fine-tuned from --model on"
                    + " the unseen domain)");
        }
        if (guideModel != null && guideWeight == null) {
            throw new IllegalArgumentException("--guide-model needs --guide-weight W (0: --model alone, 1: the guide "
                    + "model alone, above 1: further from --model's own domain)");
        }
        if (guideModel != null) {
            DomainGuidance.checkWeight(guideWeight);
            CommandChecks.convertedModel("--guide-model", guideModel);
        }
    }
}
