package io.unseen.api;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's "Embedding" example is this module's {@link EmbeddingExample}, and it runs on the demo model. */
class EmbeddingExampleTest {
    static final Path REPO = Path.of("..").toAbsolutePath().normalize();

    @Test
    void readmeQuotesTheExampleClassVerbatim() throws Exception {
        String readme = Files.readString(REPO.resolve("README.md"), StandardCharsets.UTF_8);
        Matcher m = Pattern.compile("## Embedding\n.*?```java\n(.*?)```\n", Pattern.DOTALL).matcher(readme);
        assertTrue(m.find(), "README.md has no ```java block under '## Embedding'");
        String example = Files.readString(REPO.resolve("api/src/test/java/io/unseen/api/EmbeddingExample.java"),
                StandardCharsets.UTF_8);
        assertEquals(example, m.group(1), "README's embedding example differs from EmbeddingExample.java: copy the file");
    }

    @Test
    void exampleWritesThePriorAndTwoSamples(@TempDir Path out) throws Exception {
        EmbeddingExample.main(new String[]{REPO.resolve("models/demo").toString(), out.toString()});
        assertTrue(Files.size(out.resolve("dress-prior.safetensors")) > 0);
        assertTrue(Files.size(out.resolve("samples/sample-00000.png")) > 0);
        assertTrue(Files.size(out.resolve("samples/sample-00001.png")) > 0);
        assertTrue(Files.exists(out.resolve("samples/summary.json")));
    }
}
