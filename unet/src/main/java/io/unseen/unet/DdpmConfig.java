package io.unseen.unet;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The DDPM UNet of Ho et al., with the parameter names of the PyTorch port (pesser/pytorch_diffusion {@code Model}).
 *
 * @param inChannels      image channels in
 * @param outChannels     channels out ({@code out_ch}; equal to inChannels for an epsilon model)
 * @param ch              base channel count
 * @param chMult          channel multiplier per level ({@code ch_mult})
 * @param numResBlocks    residual blocks per level on the way down (the way up has one more)
 * @param attnResolutions feature-map sizes (pixels) at which attention blocks are used, e.g. {16}
 * @param resolution      training image size; with attnResolutions it decides where attention goes
 * @param resampWithConv  learned 3x3 convolutions in the down/upsampling layers (else average pooling / plain
 *                        nearest upsampling)
 */
public record DdpmConfig(int inChannels, int outChannels, int ch, int[] chMult, int numResBlocks,
                         int[] attnResolutions, int resolution, boolean resampWithConv) implements ModelConfig {

    /** GroupNorm(32, C) everywhere, as in the port. */
    public static final int NORM_GROUPS = 32;

    public DdpmConfig {
        chMult = chMult.clone();
        attnResolutions = attnResolutions.clone();
        require(inChannels > 0 && outChannels > 0, "inChannels and outChannels must be positive");
        require(ch > 0 && numResBlocks > 0, "ch and numResBlocks must be positive");
        require(chMult.length > 0, "chMult must list at least one level");
        for (int m : chMult) {
            require(m > 0 && (ch * m) % NORM_GROUPS == 0,
                    "every ch * chMult[i] must be a positive multiple of " + NORM_GROUPS + " (GroupNorm groups)");
        }
        require(ch % NORM_GROUPS == 0, "ch must be a multiple of " + NORM_GROUPS + " (GroupNorm groups)");
        for (int r : attnResolutions) {
            require(r > 0, "attnResolutions must be positive feature-map sizes");
        }
        require(resolution > 0, "resolution must be positive");
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("ddpm model config: " + message);
        }
    }

    /** The CelebA-HQ / LSUN 256x256 models of the paper. */
    public static DdpmConfig paper256() {
        return new DdpmConfig(3, 3, 128, new int[]{1, 1, 2, 2, 4, 4}, 2, new int[]{16}, 256, true);
    }

    /** The CIFAR-10 32x32 model. */
    public static DdpmConfig cifar10() {
        return new DdpmConfig(3, 3, 128, new int[]{1, 2, 2, 2}, 2, new int[]{16}, 32, true);
    }

    @Override
    public String arch() {
        return "ddpm";
    }

    @Override
    public int[] chMult() {
        return chMult.clone();
    }

    @Override
    public int[] attnResolutions() {
        return attnResolutions.clone();
    }

    /** Number of levels (resolutions) of the UNet. */
    public int levels() {
        return chMult.length;
    }

    /** Whether the level-{@code level} blocks (feature maps of {@code resolution >> level}) have attention. */
    public boolean attentionAt(int level) {
        int size = resolution >> level;
        for (int r : attnResolutions) {
            if (r == size) {
                return true;
            }
        }
        return false;
    }

    @Override
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("arch", arch());
        m.put("inChannels", inChannels);
        m.put("outChannels", outChannels);
        m.put("ch", ch);
        m.put("chMult", ConfigFields.list(chMult));
        m.put("numResBlocks", numResBlocks);
        m.put("attnResolutions", ConfigFields.list(attnResolutions));
        m.put("resolution", resolution);
        m.put("resampWithConv", resampWithConv);
        return m;
    }

    /** Reads the fields {@link #toMap} writes; all are required and no others are allowed. */
    public static DdpmConfig fromMap(Map<String, ?> map) {
        ConfigFields f = new ConfigFields("ddpm", map);
        DdpmConfig c = new DdpmConfig(f.integer("inChannels"), f.integer("outChannels"), f.integer("ch"),
                f.integers("chMult"), f.integer("numResBlocks"), f.integers("attnResolutions"),
                f.integer("resolution"), f.bool("resampWithConv"));
        f.requireNoOthers();
        return c;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof DdpmConfig)) {
            return false;
        }
        DdpmConfig c = (DdpmConfig) o;
        return inChannels == c.inChannels && outChannels == c.outChannels && ch == c.ch
                && Arrays.equals(chMult, c.chMult) && numResBlocks == c.numResBlocks
                && Arrays.equals(attnResolutions, c.attnResolutions) && resolution == c.resolution
                && resampWithConv == c.resampWithConv;
    }

    @Override
    public int hashCode() {
        return toMap().hashCode();
    }

    @Override
    public String toString() {
        return "DdpmConfig" + toMap();
    }
}
