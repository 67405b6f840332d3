package io.unseen.cli;

import io.unseen.commands.Errors;
import io.unseen.convert.ConvertOptions;
import io.unseen.engine.io.SafeTensors;
import io.unseen.engine.io.SafeTensorsFile;
import io.unseen.unet.UNets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

@Command(name = "serve", description = "A local web app: drop reference images of an unseen domain on a page, watch "
        + "the inversion and the samples appear, download them as a zip; the same as a JSON API under /api/.")
final class ServeCommand implements Callable<Integer> {
    @Option(names = "--port", defaultValue = "8080", description = "TCP port (0: any free one).")
    int port;

    @Option(names = "--bind", defaultValue = "127.0.0.1", paramLabel = "ADDRESS",
            description = "Address to listen on (default 127.0.0.1: this machine only; another needs --token).")
    String bind;

    @Option(names = "--models", paramLabel = "DIR",
            description = "A folder of converted models (.safetensors) to offer besides the bundled demo model.")
    Path models;

    @Option(names = "--data", defaultValue = "unseen-data", paramLabel = "DIR",
            description = "Where uploads, priors and samples are kept (they survive a restart).")
    Path data;

    @Option(names = "--token", paramLabel = "TOKEN",
            description = "Required by every API call (Authorization: Bearer TOKEN, or ?token=TOKEN; open the page as /?token=TOKEN).")
    String token;

    @Option(names = "--allow-host", paramLabel = "NAME", split = ",",
            description = "A name besides 127.0.0.1, localhost and the --bind address by which browsers reach this "
                    + "server (requests naming any other Host are refused: DNS rebinding). Repeatable.")
    List<String> allowHosts = new ArrayList<>();

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        InetAddress address = InetAddress.getByName(bind);
        if (!address.isLoopbackAddress() && (token == null || token.isBlank())) {
            throw new IllegalArgumentException("--bind " + bind + " lets other machines in: give --token too");
        }
        CommandChecks.writableFolder("--data", data);
        Files.createDirectories(data);
        WebJobs jobs = new WebJobs(data, offered(), device.name(), System.err::println);
        WebServer server = new WebServer(new InetSocketAddress(address, port), jobs, WebServer.Limits.DEFAULT, token,
                allowHosts);
        String host = address.isAnyLocalAddress() ? "localhost" : address.getHostAddress();
        System.out.println("unseen serve: http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + server.port()
                + "/" + (token == null ? "" : "?token=TOKEN") + " (data in " + data + "; Ctrl-C stops)");
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.close();
            } catch (IOException e) {
                System.err.println("unseen serve: " + e.getMessage());
            }
            System.err.println("unseen serve: stopped");
            stop.countDown();
        }));
        stop.await();
        return 0;
    }

    /** Why {@code file} is not a converted model (its header and model config, read without the weights), or null. */
    private static String notAConvertedModel(Path file) {
        try (SafeTensorsFile st = SafeTensors.open(file)) {
            UNets.readConfig(file, st.metadata());
            return null;
        } catch (IOException | RuntimeException e) {
            return Errors.describe(e);
        }
    }

    /** The bundled demo model (its checkpoint, converted on load) and every converted model in --models. */
    Map<String, WebJobs.ModelSource> offered() throws IOException {
        Map<String, WebJobs.ModelSource> offered = new LinkedHashMap<>();
        Path demo = CliPaths.bundled(Path.of("models", "demo")).resolve(DemoCommand.CHECKPOINT);
        if (Files.isRegularFile(demo)) {
            Path sneakers = CliPaths.bundled(Path.of("models", "demo", "references", "sneaker"));
            offered.put("demo", new WebJobs.ModelSource("demo", demo, ConvertOptions.none().withImageSize(32),
                    Files.isDirectory(sneakers) ? sneakers : null));
        }
        if (models != null) {
            try (Stream<Path> files = Files.list(models)) {
                for (Path f : files.sorted().toList()) {
                    String name = f.getFileName().toString();
                    if (name.endsWith(".safetensors")) {
                        String problem = notAConvertedModel(f);
                        if (problem != null) {
                            System.err.println("unseen serve: not offering " + Errors.oneLine(problem));
                            continue;
                        }
                        name = name.substring(0, name.length() - ".safetensors".length());
                        offered.put(name, new WebJobs.ModelSource(name, f, ConvertOptions.none(), null));
                    }
                }
            }
        }
        if (offered.isEmpty()) {
            throw new IllegalArgumentException("no models to offer: the demo model is missing (run from the repository "
                    + "root) and --models " + (models == null ? "was not given" : models + " holds no .safetensors file"));
        }
        return offered;
    }
}
