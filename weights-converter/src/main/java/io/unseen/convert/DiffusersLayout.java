package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;
import io.unseen.unet.DdpmConfig;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face diffusers {@code UNet2DModel} (the google/ddpm-* checkpoints) mapped onto the DDPM port's names, as
 * diffusers' scripts/convert_ddpm_original_checkpoint_to_diffusers.py maps the other way: resnets -> block
 * (time_emb_proj -> temb_proj, conv_shortcut -> nin_shortcut), attentions -> attn (group_norm -> norm; to_q / query
 * -> q, to_k / key -> k, to_v / value -> v, to_out.0 / proj_attn -> proj_out; Linear [C, C] weights become 1x1 conv
 * [C, C, 1, 1]), downsamplers.0.conv / upsamplers.0.conv -> downsample.conv / upsample.conv, mid_block.resnets.{0,1}
 * -> mid.block_{1,2}, mid_block.attentions.0 -> mid.attn_1, time_embedding.linear_{1,2} -> temb.dense.{0,1},
 * conv_norm_out -> norm_out, and up_blocks.{k} -> up.{levels-1-k} (diffusers lists the up path deepest first).
 */
final class DiffusersLayout {

    private static final Pattern BLOCK = Pattern.compile(
            "(down|up)_blocks\\.(\\d{1,4})\\.(resnets|attentions|downsamplers|upsamplers)\\.(\\d{1,4})\\.(.+)");
    private static final Pattern MID = Pattern.compile("mid_block\\.(resnets|attentions)\\.(\\d{1,4})\\.(.+)");
    private static final Map<String, String> RESNET = Map.of("norm1", "norm1", "conv1", "conv1",
            "time_emb_proj", "temb_proj", "norm2", "norm2", "conv2", "conv2", "conv_shortcut", "nin_shortcut");
    private static final Map<String, String> ATTENTION = Map.of("group_norm", "norm", "to_q", "q", "query", "q",
            "to_k", "k", "key", "k", "to_v", "v", "value", "v", "to_out.0", "proj_out", "proj_attn", "proj_out");
    private static final Map<String, String> TOP = Map.of("conv_in", "conv_in", "conv_out", "conv_out",
            "conv_norm_out", "norm_out", "time_embedding.linear_1", "temb.dense.0",
            "time_embedding.linear_2", "temb.dense.1");

    private DiffusersLayout() {
    }

    static boolean matches(KeyShapes s) {
        return s.has("time_embedding.linear_1.weight") || s.hasPrefix("down_blocks.") || s.has("conv_norm_out.weight");
    }

    /** Number of levels: the down blocks. */
    static int levels(KeyShapes s) throws TensorFormatException {
        int n = s.contiguousCount(s.indices("down_blocks\\.(\\d+)\\."), "down block");
        if (n == 0 || n > DdpmPortLayout.MAX_LEVELS) {
            throw new TensorFormatException(s.file(), "found " + n + " down_blocks; expected 1 to "
                    + DdpmPortLayout.MAX_LEVELS);
        }
        return n;
    }

    /** The DDPM-port name of diffusers tensor {@code name}, or null when it has none. */
    static String portName(String name, int levels) {
        int dot = name.lastIndexOf('.');
        if (dot < 0) {
            return null;
        }
        String module = name.substring(0, dot), param = name.substring(dot); // ".weight" / ".bias"
        String top = TOP.get(module);
        if (top != null) {
            return top + param;
        }
        Matcher m = BLOCK.matcher(module);
        if (m.matches()) {
            boolean down = m.group(1).equals("down");
            int block = Integer.parseInt(m.group(2));
            if (block >= levels) {
                return null;
            }
            String level = (down ? "down." : "up.") + (down ? block : levels - 1 - block);
            int j = Integer.parseInt(m.group(4));
            String layer = m.group(5);
            switch (m.group(3)) {
                case "resnets":
                    return RESNET.containsKey(layer) ? level + ".block." + j + "." + RESNET.get(layer) + param : null;
                case "attentions":
                    return ATTENTION.containsKey(layer) ? level + ".attn." + j + "." + ATTENTION.get(layer) + param
                            : null;
                case "downsamplers":
                    return down && j == 0 && layer.equals("conv") ? level + ".downsample.conv" + param : null;
                default:
                    return !down && j == 0 && layer.equals("conv") ? level + ".upsample.conv" + param : null;
            }
        }
        m = MID.matcher(module);
        if (m.matches()) {
            int j = Integer.parseInt(m.group(2));
            String layer = m.group(3);
            if (m.group(1).equals("resnets")) {
                return j <= 1 && RESNET.containsKey(layer) ? "mid.block_" + (j + 1) + "." + RESNET.get(layer) + param
                        : null;
            }
            return j == 0 && ATTENTION.containsKey(layer) ? "mid.attn_1." + ATTENTION.get(layer) + param : null;
        }
        return null;
    }

    /** Whether {@code name} uses one of the pre-0.14 attention names (query, key, value, proj_attn). */
    static boolean oldAttentionName(String name) {
        return name.matches(".*\\.attentions\\.\\d+\\.(query|key|value|proj_attn)\\.(weight|bias)");
    }

    /** The shape in the port's layout: attention projections are 1x1 convolutions there. */
    static int[] portShape(String portName, int[] shape) {
        if (portName.matches(".*\\.(attn\\.\\d+|attn_1)\\.(q|k|v|proj_out)\\.weight") && shape.length == 2) {
            return new int[]{shape[0], shape[1], 1, 1};
        }
        return shape;
    }

    /**
     * Cross-checks a diffusers config.json with the inferred config, and refuses settings the DDPM port does not
     * have (they would change the computation). Fields absent from the file are not checked.
     */
    static void checkConfig(Path configFile, Map<?, ?> json, DdpmConfig c) throws TensorFormatException {
        Checker k = new Checker(configFile, json);
        k.oneOf("_class_name", "UNet2DModel");
        k.equal("in_channels", (long) c.inChannels());
        k.equal("out_channels", (long) c.outChannels());
        k.equal("layers_per_block", (long) c.numResBlocks());
        Object boc = json.get("block_out_channels");
        if (boc != null) {
            int[] mult = c.chMult();
            long[] expected = new long[mult.length];
            for (int i = 0; i < mult.length; i++) {
                expected[i] = (long) c.ch() * mult[i];
            }
            k.require(boc instanceof List && sameLongs((List<?>) boc, expected), "block_out_channels", boc,
                    Arrays.toString(expected) + " (from the weights)");
        }
        checkBlockTypes(k, json, c, "down_block_types", "AttnDownBlock2D", "DownBlock2D", false);
        checkBlockTypes(k, json, c, "up_block_types", "AttnUpBlock2D", "UpBlock2D", true);
        k.oneOf("act_fn", "silu", "swish");
        k.equal("norm_num_groups", (long) DdpmConfig.NORM_GROUPS);
        k.number("norm_eps", 1e-6);
        k.oneOf("time_embedding_type", "positional");
        k.equal("flip_sin_to_cos", Boolean.FALSE);
        k.number("freq_shift", 1);
        k.number("downsample_padding", 0);
        k.equal("center_input_sample", Boolean.FALSE);
        k.number("mid_block_scale_factor", 1);
        k.oneOf("resnet_time_scale_shift", "default");
        k.equal("add_attention", Boolean.TRUE);
        k.absent("class_embed_type");
        k.absent("num_class_embeds");
        Object headDim = json.get("attention_head_dim");
        if (headDim != null) {
            // one head is what the port has: a head width equal to each attention block's channel count
            for (int level = 0; level < c.levels(); level++) {
                if (c.attentionAt(level)) {
                    k.require(headDim instanceof Long && (Long) headDim == (long) c.ch() * c.chMult()[level],
                            "attention_head_dim", headDim, "null or the attention width " + c.ch() * c.chMult()[level]
                                    + " (one head, as the DDPM port)");
                }
            }
        }
    }

    private static void checkBlockTypes(Checker k, Map<?, ?> json, DdpmConfig c, String field, String attn,
                                        String plain, boolean reversed) throws TensorFormatException {
        Object v = json.get(field);
        if (v == null) {
            return;
        }
        int levels = c.levels();
        String[] expected = new String[levels];
        for (int i = 0; i < levels; i++) {
            int level = reversed ? levels - 1 - i : i;
            expected[i] = c.attentionAt(level) ? attn : plain;
        }
        k.require(v instanceof List && ((List<?>) v).equals(Arrays.asList(expected)), field, v,
                Arrays.toString(expected) + " (from the weights)");
    }

    private static boolean sameLongs(List<?> list, long[] expected) {
        if (list.size() != expected.length) {
            return false;
        }
        for (int i = 0; i < expected.length; i++) {
            if (!(list.get(i) instanceof Long) || (Long) list.get(i) != expected[i]) {
                return false;
            }
        }
        return true;
    }

    /** Field checks against a parsed config.json; each failure names the file, the field, both values. */
    private static final class Checker {
        private final Path file;
        private final Map<?, ?> json;

        Checker(Path file, Map<?, ?> json) {
            this.file = file;
            this.json = json;
        }

        void require(boolean ok, String field, Object found, String expected) throws TensorFormatException {
            if (!ok) {
                throw new TensorFormatException(file, "field '" + field + "' is " + render(found) + ", expected "
                        + expected + "; this converter handles the DDPM-style UNet2DModel (google/ddpm-*)");
            }
        }

        void equal(String field, Object expected) throws TensorFormatException {
            Object v = json.get(field);
            if (json.containsKey(field) && v != null) {
                require(v.equals(expected), field, v, render(expected));
            }
        }

        void number(String field, double expected) throws TensorFormatException {
            Object v = json.get(field);
            if (json.containsKey(field) && v != null) {
                require(v instanceof Number && ((Number) v).doubleValue() == expected, field, v,
                        String.valueOf(expected));
            }
        }

        void oneOf(String field, String... allowed) throws TensorFormatException {
            Object v = json.get(field);
            if (json.containsKey(field) && v != null) {
                require(Arrays.asList(allowed).contains(v), field, v, String.join(" or ", allowed));
            }
        }

        void absent(String field) throws TensorFormatException {
            Object v = json.get(field);
            require(v == null, field, v, "null (class-conditional models are not supported)");
        }

        private static String render(Object o) {
            return o instanceof String ? "\"" + o + "\"" : String.valueOf(o);
        }
    }
}
