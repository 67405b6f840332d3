package io.unseen.api;

import io.unseen.convert.ConvertOptions;
import io.unseen.diffusion.DomainPrior;

import java.nio.file.Files;
import java.nio.file.Path;

public class EmbeddingExample {
    public static void main(String[] args) throws Exception {
        Path demo = Path.of(args.length > 0 ? args[0] : "models/demo");
        Path out = Files.createDirectories(Path.of(args.length > 1 ? args[1] : "embedding-output"));
        // the bundled PyTorch checkpoint, converted on the fly (it does not record its image size)
        try (Unseen unseen = Unseen.load(demo.resolve("fashion-footwear-ddpm-ema.ckpt"), "cpu",
                ConvertOptions.none().withImageSize(32), System.err::println)) {
            ProgressListener progress = (task, done, total) -> System.err.println(task + " " + done + "/" + total);
            // 32 dresses the footwear model never saw -> their prior at t0 = 500 (10 DDIM steps)
            DomainPrior dresses = unseen.invert(demo.resolve("references/dress"), Inversion.of(500, 10), progress);
            dresses.save(out.resolve("dress-prior.safetensors"));
            // two new dresses: slerp proposals kept when their geometry matches the references'
            Sampling settings = Sampling.of(2).withMethod("slerp").withClipX0(true);
            Samples samples = unseen.sample(dresses, settings, out.resolve("samples"), progress);
            System.out.println(samples.files());
        }
    }
}
