package io.unseen.convert;

import io.unseen.unet.AdmConfig;
import io.unseen.unet.DdpmConfig;
import io.unseen.unet.ModelConfig;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The public checkpoints by name: the architecture and the values the weights cannot reveal (head count or width,
 * qkv order, noise schedule, training steps, timestep rescaling). Each entry cites the public code it was checked
 * against. Attention resolutions are in pixels (feature-map sizes), as in our configs.
 */
public final class Presets {

    /** A named public checkpoint. */
    public record Preset(String name, ModelConfig config, Schedule schedule, String source) {
        public String arch() {
            return config.arch();
        }
    }

    private static final Map<String, Preset> ALL = new LinkedHashMap<>();

    static {
        int[] lsunMult = {1, 1, 2, 2, 4, 4};
        // pesser/pytorch_diffusion diffusion.py Diffusion.from_pretrained: cifar10_cfg = resolution 32, ch 128,
        // ch_mult (1,2,2,2), num_res_blocks 2, attn_resolutions (16,), out_ch 3; diffusion_config = linear,
        // beta_start 0.0001, beta_end 0.02, 1000 steps (the converted TF checkpoints of Ho et al.).
        add("ddpm-cifar10-32", new DdpmConfig(3, 3, 128, new int[]{1, 2, 2, 2}, 2, new int[]{16}, 32, true),
                Schedule.ddpm(), "pesser/pytorch_diffusion diffusion.py cifar10_cfg; Ho et al. diffusion_models_converted"
                        + " cifar10 / ema_cifar10");
        // ermongroup/SDEdit configs/celeba.yml (CelebA_HQ, image_size 256): ch 128, ch_mult [1,1,2,2,4,4],
        // num_res_blocks 2, attn_resolutions [16], resamp_with_conv True; linear 0.0001..0.02, 1000 steps.
        add("ddpm-celebahq-256", new DdpmConfig(3, 3, 128, lsunMult, 2, new int[]{16}, 256, true), Schedule.ddpm(),
                "ermongroup/SDEdit configs/celeba.yml (celeba_hq.ckpt)");
        // pesser/pytorch_diffusion diffusion.py lsun_cfg (used for lsun_church, lsun_bedroom, lsun_cat): resolution
        // 256, ch 128, ch_mult (1,1,2,2,4,4), num_res_blocks 2, attn_resolutions (16,); same linear schedule.
        add("ddpm-church-256", new DdpmConfig(3, 3, 128, lsunMult, 2, new int[]{16}, 256, true), Schedule.ddpm(),
                "pesser/pytorch_diffusion diffusion.py lsun_cfg (lsun_church / ema_lsun_church)");
        add("ddpm-bedroom-256", new DdpmConfig(3, 3, 128, lsunMult, 2, new int[]{16}, 256, true), Schedule.ddpm(),
                "pesser/pytorch_diffusion diffusion.py lsun_cfg (lsun_bedroom / ema_lsun_bedroom)");
        add("ddpm-cat-256", new DdpmConfig(3, 3, 128, lsunMult, 2, new int[]{16}, 256, true), Schedule.ddpm(),
                "pesser/pytorch_diffusion diffusion.py lsun_cfg (lsun_cat / ema_lsun_cat)");
        // jychoi118/P2-weighting README (afhq_p2.pt / afhq_baseline.pt, also the ILVR AFHQ-dog model):
        // --attention_resolutions 16 --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule
        // linear --num_channels 128 --num_head_channels 64 --num_res_blocks 1 --resblock_updown True
        // --use_scale_shift_norm True; guided_diffusion/script_util.py: channel_mult (1,1,2,2,4,4) for 256,
        // num_heads 4 and num_heads_upsample -1 (unused with num_head_channels), use_new_attention_order False
        // (legacy), rescale_timesteps False (diffusion_defaults).
        add("adm-afhqdog-256", new AdmConfig(3, 128, 6, 1, new int[]{16}, lsunMult, 4, 64, -1, true, true, true,
                        true, "legacy", 256), Schedule.linear(1000, false),
                "jychoi118/P2-weighting README flags and guided_diffusion/script_util.py");
        // openai/improved-diffusion README, cifar10_uncond_50M_500K.pt: --image_size 32 --num_channels 128
        // --num_res_blocks 3 --learn_sigma True --dropout 0.3; --diffusion_steps 4000 --noise_schedule cosine.
        // script_util.py model_and_diffusion_defaults: num_heads 4, num_heads_upsample -1, attention_resolutions
        // "16,8", use_scale_shift_norm True, rescale_timesteps True; create_model: channel_mult (1,2,2,2) for 32.
        // unet.py AttentionBlock reshapes qkv to (b * heads, 3 * ch, T) before splitting: the legacy order.
        add("iddpm-cifar10-32", new AdmConfig(3, 128, 6, 3, new int[]{16, 8}, new int[]{1, 2, 2, 2}, 4, -1, -1, true,
                        false, true, true, "legacy", 32), Schedule.cosine(4000, true),
                "openai/improved-diffusion README (cifar10_uncond_50M_500K.pt) and script_util.py defaults");
        // openai/improved-diffusion README, lsun_uncond_100M_1200K_bs128.pt / lsun_uncond_100M_2400K_bs64.pt:
        // --image_size 256 --num_channels 128 --num_res_blocks 2 --num_heads 1 --learn_sigma True
        // --use_scale_shift_norm False --attention_resolutions 16; --diffusion_steps 1000 --noise_schedule linear
        // --rescale_timesteps False; create_model: channel_mult (1,1,2,2,4,4) for 256.
        add("iddpm-lsun-bedroom-256", new AdmConfig(3, 128, 6, 2, new int[]{16}, lsunMult, 1, -1, -1, false, false,
                        true, true, "legacy", 256), Schedule.linear(1000, false),
                "openai/improved-diffusion README (lsun_uncond_100M_*.pt) and script_util.py");
    }

    private Presets() {
    }

    private static void add(String name, ModelConfig config, Schedule schedule, String source) {
        ALL.put(name, new Preset(name, config, schedule, source));
    }

    /** Every preset, in a stable order. */
    public static Map<String, Preset> all() {
        return Collections.unmodifiableMap(ALL);
    }

    /** The preset called {@code name}. */
    public static Preset get(String name) {
        Preset p = ALL.get(name);
        if (p == null) {
            throw new IllegalArgumentException("unknown preset '" + name + "'; the presets are " + ALL.keySet());
        }
        return p;
    }
}
