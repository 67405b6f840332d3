package io.unseen.engine.cpu;

import io.unseen.engine.Tensor;
import io.unseen.engine.ops.Backend;
import io.unseen.engine.ops.Conv2dSpec;
import io.unseen.engine.ops.DdimCoefficients;
import io.unseen.engine.ops.QkvLayout;
import io.unseen.engine.ops.TimestepEmbeddingStyle;

/**
 * Scalar reference implementation of every op: plain loops, double accumulators, one thread. Written to be
 * obviously right, not fast; the fast backend is tested against it.
 */
public final class ReferenceBackend extends Backend {
    public static final ReferenceBackend INSTANCE = new ReferenceBackend();

    private ReferenceBackend() {
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    protected Tensor allocateMemory(int[] shape) {
        return Tensor.zeros(shape);
    }

    /**
     * Row-major SGEMM: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, op(A) = A (stored [m,k], leading
     * dimension lda) or, if transA, A^T (A stored [k,m]); likewise B. When beta == 0, C is not read.
     */
    static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                     float beta, float[] c, int cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                    float bv = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
                    sum += (double) av * bv;
                }
                int ci = cOff + i * ldc + j;
                c[ci] = (float) (alpha * sum + (beta == 0f ? 0.0 : (double) beta * c[ci]));
            }
        }
    }

    @Override
    protected void linearKernel(Tensor x, Tensor weight, Tensor bias, Tensor out) {
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        float[] od = out.hostArray();
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < o; j++) {
                od[out.offset() + r * o + j] = bias == null ? 0f : bias.hostArray()[bias.offset() + j];
            }
        }
        gemm(false, true, n, o, in, 1f, x.hostArray(), x.offset(), in, weight.hostArray(), weight.offset(), in,
                bias == null ? 0f : 1f, od, out.offset(), o);
    }

    @Override
    protected void matmulKernel(int batch, int m, int n, int k, Tensor a, boolean transA, Tensor b, boolean transB,
                                float alpha, Tensor out) {
        int lda = a.dim(-1), ldb = b.dim(-1);
        for (int i = 0; i < batch; i++) {
            gemm(transA, transB, m, n, k, alpha, a.hostArray(), a.offset() + i * m * k, lda, b.hostArray(),
                    b.offset() + i * k * n, ldb, 0f, out.hostArray(), out.offset() + i * m * n, n);
        }
    }

    @Override
    protected void conv2dKernel(Tensor x, Tensor weight, Tensor bias, Conv2dSpec spec, Tensor scratch, Tensor out) {
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = out.dim(2), wo = out.dim(3), s = spec.stride();
        float[] xd = x.hostArray(), wd = weight.hostArray(), od = out.hostArray();
        int xo = x.offset(), wOff = weight.offset(), oo = out.offset();
        for (int b = 0; b < n; b++) {
            for (int oc = 0; oc < o; oc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double sum = bias == null ? 0 : bias.hostArray()[bias.offset() + oc];
                        for (int ic = 0; ic < c; ic++) {
                            for (int ky = 0; ky < kh; ky++) {
                                int iy = oy * s + ky - spec.padTop();
                                if (iy < 0 || iy >= h) {
                                    continue;
                                }
                                for (int kx = 0; kx < kw; kx++) {
                                    int ix = ox * s + kx - spec.padLeft();
                                    if (ix < 0 || ix >= w) {
                                        continue;
                                    }
                                    sum += (double) xd[xo + ((b * c + ic) * h + iy) * w + ix]
                                            * wd[wOff + ((oc * c + ic) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        od[oo + ((b * o + oc) * ho + oy) * wo + ox] = (float) sum;
                    }
                }
            }
        }
    }

    @Override
    protected void groupNormKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta, Tensor out) {
        int n = x.dim(0), c = x.dim(1), spatial = x.numel() / Math.max(1, n * c), cpg = c / groups;
        int groupSize = cpg * spatial;
        float[] xd = x.hostArray(), od = out.hostArray();
        int xo = x.offset(), oo = out.offset();
        for (int b = 0; b < n; b++) {
            for (int g = 0; g < groups; g++) {
                int start = (b * c + g * cpg) * spatial;
                double mean = groupMean(xd, xo + start, groupSize);
                double var = groupVariance(xd, xo + start, groupSize, mean);
                double inv = 1.0 / Math.sqrt(var + eps);
                for (int ch = 0; ch < cpg; ch++) {
                    int channel = g * cpg + ch;
                    double scale = gamma == null ? 1 : gamma.hostArray()[gamma.offset() + channel];
                    double shift = beta == null ? 0 : beta.hostArray()[beta.offset() + channel];
                    for (int i = 0; i < spatial; i++) {
                        int idx = start + ch * spatial + i;
                        od[oo + idx] = (float) ((xd[xo + idx] - mean) * inv * scale + shift);
                    }
                }
            }
        }
    }

    /** The mean of {@code count} values from {@code off}, summed in double. */
    private static double groupMean(float[] x, int off, int count) {
        double mean = 0;
        for (int i = 0; i < count; i++) {
            mean += x[off + i];
        }
        return mean / count;
    }

    /** The biased variance (divided by count, as PyTorch's GroupNorm) about {@code mean}. */
    private static double groupVariance(float[] x, int off, int count, double mean) {
        double var = 0;
        for (int i = 0; i < count; i++) {
            double d = x[off + i] - mean;
            var += d * d;
        }
        return var / count;
    }

    @Override
    protected void siluKernel(Tensor x, Tensor out) {
        float[] xd = x.hostArray(), od = out.hostArray();
        for (int i = 0; i < x.numel(); i++) {
            double v = xd[x.offset() + i];
            od[out.offset() + i] = (float) (v / (1.0 + Math.exp(-v)));
        }
    }

    @Override
    protected void softmaxKernel(Tensor x, int outer, int axisLen, int inner, Tensor out) {
        float[] xd = x.hostArray(), od = out.hostArray();
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                int base = o * axisLen * inner + in;
                double max = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < axisLen; i++) {
                    max = Math.max(max, xd[x.offset() + base + i * inner]);
                }
                double sum = 0;
                for (int i = 0; i < axisLen; i++) {
                    sum += Math.exp(xd[x.offset() + base + i * inner] - max);
                }
                for (int i = 0; i < axisLen; i++) {
                    od[out.offset() + base + i * inner] = (float) (Math.exp(xd[x.offset() + base + i * inner] - max)
                            / sum);
                }
            }
        }
    }

    @Override
    protected void attentionKernel(Tensor qkv, int heads, QkvLayout layout, Tensor scratch, Tensor out) {
        int n = qkv.dim(0), channels = qkv.dim(1) / 3, t = qkv.dim(2), c = channels / heads;
        float[] in = qkv.hostArray(), od = out.hostArray();
        double scale = 1.0 / Math.sqrt(c);
        double[] weights = new double[t];
        for (int b = 0; b < n; b++) {
            int base = qkv.offset() + b * 3 * channels * t;
            for (int h = 0; h < heads; h++) {
                int q0 = base + layout.channelOffset(0, h, heads, channels) * t;
                int k0 = base + layout.channelOffset(1, h, heads, channels) * t;
                int v0 = base + layout.channelOffset(2, h, heads, channels) * t;
                for (int i = 0; i < t; i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < t; j++) {
                        double dot = 0;
                        for (int ch = 0; ch < c; ch++) {
                            dot += (double) in[q0 + ch * t + i] * in[k0 + ch * t + j];
                        }
                        weights[j] = dot * scale;
                        max = Math.max(max, weights[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) {
                        weights[j] = Math.exp(weights[j] - max);
                        sum += weights[j];
                    }
                    for (int ch = 0; ch < c; ch++) {
                        double acc = 0;
                        for (int j = 0; j < t; j++) {
                            acc += weights[j] * in[v0 + ch * t + j];
                        }
                        od[out.offset() + ((b * channels) + h * c + ch) * t + i] = (float) (acc / sum);
                    }
                }
            }
        }
    }

    @Override
    protected void upsampleNearest2xKernel(Tensor x, Tensor out) {
        int planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
        float[] xd = x.hostArray(), od = out.hostArray();
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < 2 * h; y++) {
                for (int xx = 0; xx < 2 * w; xx++) {
                    od[out.offset() + (p * 2 * h + y) * 2 * w + xx] = xd[x.offset() + (p * h + y / 2) * w + xx / 2];
                }
            }
        }
    }

    @Override
    protected void avgPool2x2Kernel(Tensor x, Tensor out) {
        int planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), ho = out.dim(2), wo = out.dim(3);
        float[] xd = x.hostArray(), od = out.hostArray();
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < ho; y++) {
                for (int xx = 0; xx < wo; xx++) {
                    int i = x.offset() + (p * h + 2 * y) * w + 2 * xx;
                    od[out.offset() + (p * ho + y) * wo + xx] =
                            (float) (((double) xd[i] + xd[i + 1] + xd[i + w] + xd[i + w + 1]) / 4);
                }
            }
        }
    }

    @Override
    protected void concatChannelsKernel(Tensor a, Tensor b, Tensor out) {
        int n = a.dim(0);
        if (n == 0) {
            return;
        }
        int sa = a.numel() / n, sb = b.numel() / n;
        for (int i = 0; i < n; i++) {
            System.arraycopy(a.hostArray(), a.offset() + i * sa, out.hostArray(), out.offset() + i * (sa + sb), sa);
            System.arraycopy(b.hostArray(), b.offset() + i * sb, out.hostArray(), out.offset() + i * (sa + sb) + sa,
                    sb);
        }
    }

    @Override
    protected void broadcastKernel(BinaryOp op, Tensor a, Tensor b, Tensor out) {
        int rank = out.rank();
        int[] shape = out.shape();
        int[] sa = broadcastStrides(a.shape(), rank), sb = broadcastStrides(b.shape(), rank);
        int[] index = new int[rank];
        float[] ad = a.hostArray(), bd = b.hostArray(), od = out.hostArray();
        for (int flat = 0; flat < out.numel(); flat++) {
            int ia = a.offset(), ib = b.offset();
            for (int d = 0; d < rank; d++) {
                ia += index[d] * sa[d];
                ib += index[d] * sb[d];
            }
            od[out.offset() + flat] = op == BinaryOp.ADD ? ad[ia] + bd[ib] : ad[ia] * bd[ib];
            for (int d = rank - 1; d >= 0; d--) {
                if (++index[d] < shape[d]) {
                    break;
                }
                index[d] = 0;
            }
        }
    }

    @Override
    protected void timestepEmbeddingKernel(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style,
                                           Tensor out) {
        embedTimesteps(timesteps, frequencies, style, out);
    }

    /** The embedding on host tensors (shared by both host backends: O(N x dim), once per forward). */
    static void embedTimesteps(Tensor timesteps, Tensor frequencies, TimestepEmbeddingStyle style, Tensor out) {
        int n = timesteps.dim(0), dim = out.dim(1), half = dim / 2;
        float[] t = timesteps.hostArray(), o = out.hostArray(), freqs = frequencies.hostArray();
        boolean sinFirst = style == TimestepEmbeddingStyle.SIN_COS_HALF_MINUS_ONE;
        for (int k = 0; k < half; k++) {
            float f = freqs[frequencies.offset() + k];
            for (int i = 0; i < n; i++) {
                float arg = t[timesteps.offset() + i] * f;
                float s = (float) Math.sin(arg), co = (float) Math.cos(arg);
                o[out.offset() + i * dim + k] = sinFirst ? s : co;
                o[out.offset() + i * dim + half + k] = sinFirst ? co : s;
            }
        }
        if (dim % 2 == 1) {
            for (int i = 0; i < n; i++) {
                o[out.offset() + i * dim + dim - 1] = 0f;
            }
        }
    }

    @Override
    protected void ddimStepKernel(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0,
                                  Tensor out) {
        ddimStepSamples(x, eps, noise, k, clipX0, out, 0, x.dim(0));
    }

    /** The DDIM step for samples [from, to) on host tensors (shared by both host backends). */
    static void ddimStepSamples(Tensor x, Tensor eps, Tensor noise, DdimCoefficients k, boolean clipX0, Tensor out,
                         int from, int to) {
        int per = x.numel() / x.dim(0), epsPer = eps.numel() / eps.dim(0);
        float[] xd = x.hostArray(), ed = eps.hostArray(), od = out.hostArray();
        float[] zd = noise == null ? null : noise.hostArray();
        for (int s = from; s < to; s++) {
            int xi = x.offset() + s * per, ei = eps.offset() + s * epsPer, oi = out.offset() + s * per;
            int zi = noise == null ? 0 : noise.offset() + s * per;
            for (int i = 0; i < per; i++) {
                od[oi + i] = k.step(xd[xi + i], ed[ei + i], zd == null ? 0f : zd[zi + i], clipX0);
            }
        }
    }

    @Override
    protected void copyKernel(Tensor src, Tensor dst) {
        dst.copyFrom(src);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Backward passes: each loop computes one gradient element as the sum its definition names, in double.

    @Override
    protected void conv2dBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Conv2dSpec spec, Tensor gradX,
                                        Tensor gradWeight, Tensor gradBias) {
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        int o = weight.dim(0), kh = weight.dim(2), kw = weight.dim(3);
        int ho = gradOut.dim(2), wo = gradOut.dim(3), s = spec.stride();
        float[] xd = x.hostArray(), wd = weight.hostArray(), gd = gradOut.hostArray();
        int xo = x.offset(), wOff = weight.offset(), go = gradOut.offset();
        if (gradBias != null) {
            // dL/db[oc] = sum over b, oy, ox of gradOut[b, oc, oy, ox]
            for (int oc = 0; oc < o; oc++) {
                double sum = 0;
                for (int b = 0; b < n; b++) {
                    for (int p = 0; p < ho * wo; p++) {
                        sum += gd[go + (b * o + oc) * ho * wo + p];
                    }
                }
                gradBias.hostArray()[gradBias.offset() + oc] += (float) sum;
            }
        }
        if (gradWeight != null) {
            // dL/dw[oc, ic, ky, kx] = sum over b, oy, ox of gradOut[b, oc, oy, ox] * x[b, ic, oy*s+ky-pt, ox*s+kx-pl]
            float[] gw = gradWeight.hostArray();
            for (int oc = 0; oc < o; oc++) {
                for (int ic = 0; ic < c; ic++) {
                    for (int ky = 0; ky < kh; ky++) {
                        for (int kx = 0; kx < kw; kx++) {
                            double sum = 0;
                            for (int b = 0; b < n; b++) {
                                for (int oy = 0; oy < ho; oy++) {
                                    int iy = oy * s + ky - spec.padTop();
                                    if (iy < 0 || iy >= h) {
                                        continue;
                                    }
                                    for (int ox = 0; ox < wo; ox++) {
                                        int ix = ox * s + kx - spec.padLeft();
                                        if (ix < 0 || ix >= w) {
                                            continue;
                                        }
                                        sum += (double) gd[go + ((b * o + oc) * ho + oy) * wo + ox]
                                                * xd[xo + ((b * c + ic) * h + iy) * w + ix];
                                    }
                                }
                            }
                            gw[gradWeight.offset() + ((oc * c + ic) * kh + ky) * kw + kx] += (float) sum;
                        }
                    }
                }
            }
        }
        if (gradX != null) {
            // dL/dx[b, ic, iy, ix] = sum over oc, ky, kx of gradOut[b, oc, oy, ox] * w[oc, ic, ky, kx], over the
            // output pixels (oy, ox) that read (iy, ix): oy*s = iy + pt - ky, ox*s = ix + pl - kx
            float[] gx = gradX.hostArray();
            for (int b = 0; b < n; b++) {
                for (int ic = 0; ic < c; ic++) {
                    for (int iy = 0; iy < h; iy++) {
                        for (int ix = 0; ix < w; ix++) {
                            double sum = 0;
                            for (int oc = 0; oc < o; oc++) {
                                for (int ky = 0; ky < kh; ky++) {
                                    int sy = iy + spec.padTop() - ky;
                                    if (sy < 0 || sy % s != 0 || sy / s >= ho) {
                                        continue;
                                    }
                                    for (int kx = 0; kx < kw; kx++) {
                                        int sx = ix + spec.padLeft() - kx;
                                        if (sx < 0 || sx % s != 0 || sx / s >= wo) {
                                            continue;
                                        }
                                        sum += (double) gd[go + ((b * o + oc) * ho + sy / s) * wo + sx / s]
                                                * wd[wOff + ((oc * c + ic) * kh + ky) * kw + kx];
                                    }
                                }
                            }
                            gx[gradX.offset() + ((b * c + ic) * h + iy) * w + ix] = (float) sum;
                        }
                    }
                }
            }
        }
    }

    @Override
    protected void linearBackwardKernel(Tensor x, Tensor weight, Tensor gradOut, Tensor gradX, Tensor gradWeight,
                                        Tensor gradBias) {
        int n = x.dim(0), in = x.dim(1), o = weight.dim(0);
        float[] xd = x.hostArray(), wd = weight.hostArray(), gd = gradOut.hostArray();
        int xo = x.offset(), wOff = weight.offset(), go = gradOut.offset();
        if (gradX != null) {
            // dL/dx[r, i] = sum over j of gradOut[r, j] * w[j, i]
            for (int r = 0; r < n; r++) {
                for (int i = 0; i < in; i++) {
                    double sum = 0;
                    for (int j = 0; j < o; j++) {
                        sum += (double) gd[go + r * o + j] * wd[wOff + j * in + i];
                    }
                    gradX.hostArray()[gradX.offset() + r * in + i] = (float) sum;
                }
            }
        }
        if (gradWeight != null) {
            // dL/dw[j, i] = sum over r of gradOut[r, j] * x[r, i]
            for (int j = 0; j < o; j++) {
                for (int i = 0; i < in; i++) {
                    double sum = 0;
                    for (int r = 0; r < n; r++) {
                        sum += (double) gd[go + r * o + j] * xd[xo + r * in + i];
                    }
                    gradWeight.hostArray()[gradWeight.offset() + j * in + i] += (float) sum;
                }
            }
        }
        if (gradBias != null) {
            // dL/db[j] = sum over r of gradOut[r, j]
            for (int j = 0; j < o; j++) {
                double sum = 0;
                for (int r = 0; r < n; r++) {
                    sum += gd[go + r * o + j];
                }
                gradBias.hostArray()[gradBias.offset() + j] += (float) sum;
            }
        }
    }

    @Override
    protected void groupNormBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor gradOut,
                                           Tensor gradX, Tensor gradGamma, Tensor gradBeta) {
        int n = x.dim(0), c = x.dim(1), spatial = x.numel() / Math.max(1, n * c), cpg = c / groups;
        int groupSize = cpg * spatial;
        float[] xd = x.hostArray(), gd = gradOut.hostArray();
        int xo = x.offset(), go = gradOut.offset();
        double[] dGamma = new double[c], dBeta = new double[c];
        for (int b = 0; b < n; b++) {
            for (int g = 0; g < groups; g++) {
                int start = (b * c + g * cpg) * spatial;
                // the forward's statistics
                double mean = groupMean(xd, xo + start, groupSize);
                double var = groupVariance(xd, xo + start, groupSize, mean);
                double inv = 1.0 / Math.sqrt(var + eps);
                // dxhat = gradOut * gamma; the two group means the gradient of the normalization subtracts
                double meanDxhat = 0, meanDxhatXhat = 0;
                for (int ch = 0; ch < cpg; ch++) {
                    int channel = g * cpg + ch;
                    double scale = gamma == null ? 1 : gamma.hostArray()[gamma.offset() + channel];
                    for (int i = 0; i < spatial; i++) {
                        int idx = start + ch * spatial + i;
                        double xhat = (xd[xo + idx] - mean) * inv, dy = gd[go + idx];
                        meanDxhat += dy * scale;
                        meanDxhatXhat += dy * scale * xhat;
                        dGamma[channel] += dy * xhat;
                        dBeta[channel] += dy;
                    }
                }
                meanDxhat /= groupSize;
                meanDxhatXhat /= groupSize;
                if (gradX != null) {
                    for (int ch = 0; ch < cpg; ch++) {
                        int channel = g * cpg + ch;
                        double scale = gamma == null ? 1 : gamma.hostArray()[gamma.offset() + channel];
                        for (int i = 0; i < spatial; i++) {
                            int idx = start + ch * spatial + i;
                            double xhat = (xd[xo + idx] - mean) * inv, dxhat = gd[go + idx] * scale;
                            gradX.hostArray()[gradX.offset() + idx] =
                                    (float) ((dxhat - meanDxhat - xhat * meanDxhatXhat) * inv);
                        }
                    }
                }
            }
        }
        for (int channel = 0; channel < c; channel++) {
            if (gradGamma != null) {
                gradGamma.hostArray()[gradGamma.offset() + channel] += (float) dGamma[channel];
            }
            if (gradBeta != null) {
                gradBeta.hostArray()[gradBeta.offset() + channel] += (float) dBeta[channel];
            }
        }
    }

    /** The three ops it fuses, one after the other, on temporaries of this call (host arrays, not this backend's). */
    @Override
    protected void groupNormSiluBackwardKernel(Tensor x, int groups, float eps, Tensor gamma, Tensor beta,
                                               Tensor mask, Tensor gradAct, Tensor gradX, Tensor gradGamma,
                                               Tensor gradBeta) {
        Tensor z = Tensor.zeros(x.shape()), dz = Tensor.zeros(x.shape()), g = gradAct;
        groupNormKernel(x, groups, eps, gamma, beta, z);                      // z = groupNorm(x)
        if (mask != null) {
            broadcastKernel(BinaryOp.MUL, gradAct, mask, dz);                 // through the mask
            g = dz;
        }
        siluBackwardKernel(z, g, dz);                                         // through the SiLU
        groupNormBackwardKernel(x, groups, eps, gamma, dz, gradX, gradGamma, gradBeta);
    }

    @Override
    protected void siluBackwardKernel(Tensor x, Tensor gradOut, Tensor gradX) {
        float[] xd = x.hostArray(), gd = gradOut.hostArray(), gx = gradX.hostArray();
        for (int i = 0; i < x.numel(); i++) {
            // d/dx [x s(x)] = s + x s (1 - s)
            double v = xd[x.offset() + i], sig = 1.0 / (1.0 + Math.exp(-v));
            gx[gradX.offset() + i] = (float) (gd[gradOut.offset() + i] * sig * (1 + v * (1 - sig)));
        }
    }

    @Override
    protected void softmaxBackwardKernel(Tensor y, Tensor gradOut, int outer, int axisLen, int inner, Tensor gradX) {
        float[] yd = y.hostArray(), gd = gradOut.hostArray(), gx = gradX.hostArray();
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                int base = o * axisLen * inner + in;
                // dL/dx_i = y_i (g_i - sum_j g_j y_j)
                double dot = 0;
                for (int i = 0; i < axisLen; i++) {
                    dot += (double) gd[gradOut.offset() + base + i * inner] * yd[y.offset() + base + i * inner];
                }
                for (int i = 0; i < axisLen; i++) {
                    int at = base + i * inner;
                    gx[gradX.offset() + at] = (float) (yd[y.offset() + at] * (gd[gradOut.offset() + at] - dot));
                }
            }
        }
    }

    @Override
    protected void upsampleNearest2xBackwardKernel(Tensor gradOut, Tensor gradX) {
        int planes = gradX.dim(0) * gradX.dim(1), h = gradX.dim(2), w = gradX.dim(3);
        float[] gd = gradOut.hostArray(), gx = gradX.hostArray();
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    int i = gradOut.offset() + (p * 2 * h + 2 * y) * 2 * w + 2 * xx;
                    gx[gradX.offset() + (p * h + y) * w + xx] =
                            (float) ((double) gd[i] + gd[i + 1] + gd[i + 2 * w] + gd[i + 2 * w + 1]);
                }
            }
        }
    }

    @Override
    protected void avgPool2x2BackwardKernel(Tensor gradOut, Tensor gradX) {
        int planes = gradX.dim(0) * gradX.dim(1), h = gradX.dim(2), w = gradX.dim(3);
        int ho = gradOut.dim(2), wo = gradOut.dim(3);
        float[] gd = gradOut.hostArray(), gx = gradX.hostArray();
        for (int p = 0; p < planes; p++) {
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    boolean pooled = y / 2 < ho && xx / 2 < wo;
                    gx[gradX.offset() + (p * h + y) * w + xx] =
                            pooled ? gd[gradOut.offset() + (p * ho + y / 2) * wo + xx / 2] / 4 : 0f;
                }
            }
        }
    }

    @Override
    protected void sumToShapeKernel(Tensor x, Tensor out) {
        int rank = x.rank();
        int[] shape = x.shape(), so = broadcastStrides(out.shape(), rank), index = new int[rank];
        double[] sums = new double[out.numel()];
        float[] xd = x.hostArray();
        for (int flat = 0; flat < x.numel(); flat++) {
            int io = 0;
            for (int d = 0; d < rank; d++) {
                io += index[d] * so[d];
            }
            sums[io] += xd[x.offset() + flat];
            for (int d = rank - 1; d >= 0; d--) {
                if (++index[d] < shape[d]) {
                    break;
                }
                index[d] = 0;
            }
        }
        for (int i = 0; i < sums.length; i++) {
            out.hostArray()[out.offset() + i] = (float) sums[i];
        }
    }

    @Override
    protected void attentionBackwardKernel(Tensor qkv, int heads, QkvLayout layout, Tensor gradOut,
                                           Tensor gradQkv) {
        int n = qkv.dim(0), channels = qkv.dim(1) / 3, t = qkv.dim(2), c = channels / heads;
        float[] in = qkv.hostArray(), gd = gradOut.hostArray(), gq = gradQkv.hostArray();
        double scale = 1.0 / Math.sqrt(c);
        double[][] p = new double[t][t], dS = new double[t][t];
        for (int b = 0; b < n; b++) {
            int base = b * 3 * channels * t;
            for (int h = 0; h < heads; h++) {
                int q0 = base + layout.channelOffset(0, h, heads, channels) * t;
                int k0 = base + layout.channelOffset(1, h, heads, channels) * t;
                int v0 = base + layout.channelOffset(2, h, heads, channels) * t;
                int o0 = gradOut.offset() + (b * channels + h * c) * t;
                // the forward's probabilities: P[i, j] = softmax over j of scale * sum_ch q[ch, i] k[ch, j]
                for (int i = 0; i < t; i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < t; j++) {
                        double dot = 0;
                        for (int ch = 0; ch < c; ch++) {
                            dot += (double) in[qkv.offset() + q0 + ch * t + i] * in[qkv.offset() + k0 + ch * t + j];
                        }
                        p[i][j] = dot * scale;
                        max = Math.max(max, p[i][j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) {
                        p[i][j] = Math.exp(p[i][j] - max);
                        sum += p[i][j];
                    }
                    for (int j = 0; j < t; j++) {
                        p[i][j] /= sum;
                    }
                }
                // dv[ch, j] = sum over i of dO[ch, i] P[i, j]
                for (int ch = 0; ch < c; ch++) {
                    for (int j = 0; j < t; j++) {
                        double sum = 0;
                        for (int i = 0; i < t; i++) {
                            sum += gd[o0 + ch * t + i] * p[i][j];
                        }
                        gq[gradQkv.offset() + v0 + ch * t + j] = (float) sum;
                    }
                }
                // dP[i, j] = sum over ch of dO[ch, i] v[ch, j]; dS[i, j] = P[i, j] (dP[i, j] - sum over j' of dP P)
                for (int i = 0; i < t; i++) {
                    double dot = 0;
                    for (int j = 0; j < t; j++) {
                        double dp = 0;
                        for (int ch = 0; ch < c; ch++) {
                            dp += (double) gd[o0 + ch * t + i] * in[qkv.offset() + v0 + ch * t + j];
                        }
                        dS[i][j] = dp;
                        dot += dp * p[i][j];
                    }
                    for (int j = 0; j < t; j++) {
                        dS[i][j] = p[i][j] * (dS[i][j] - dot);
                    }
                }
                // dq[ch, i] = scale sum over j of k[ch, j] dS[i, j]; dk[ch, j] = scale sum over i of q[ch, i] dS[i, j]
                for (int ch = 0; ch < c; ch++) {
                    for (int i = 0; i < t; i++) {
                        double sum = 0;
                        for (int j = 0; j < t; j++) {
                            sum += in[qkv.offset() + k0 + ch * t + j] * dS[i][j];
                        }
                        gq[gradQkv.offset() + q0 + ch * t + i] = (float) (scale * sum);
                    }
                    for (int j = 0; j < t; j++) {
                        double sum = 0;
                        for (int i = 0; i < t; i++) {
                            sum += in[qkv.offset() + q0 + ch * t + i] * dS[i][j];
                        }
                        gq[gradQkv.offset() + k0 + ch * t + j] = (float) (scale * sum);
                    }
                }
            }
        }
    }

    @Override
    protected void concatChannelsBackwardKernel(Tensor gradOut, Tensor gradA, Tensor gradB) {
        splitChannels(gradOut, gradA, gradB);
    }

    /**
     * The split of concat's gradient: per sample, the first gradA-sized run of gradOut to gradA, the rest to gradB.
     * Plain copies, so the cpu backend uses it too.
     */
    static void splitChannels(Tensor gradOut, Tensor gradA, Tensor gradB) {
        int n = gradA.dim(0);
        if (n == 0) {
            return;
        }
        int sa = gradA.numel() / n, sb = gradB.numel() / n;
        for (int i = 0; i < n; i++) {
            System.arraycopy(gradOut.hostArray(), gradOut.offset() + i * (sa + sb), gradA.hostArray(),
                    gradA.offset() + i * sa, sa);
            System.arraycopy(gradOut.hostArray(), gradOut.offset() + i * (sa + sb) + sa, gradB.hostArray(),
                    gradB.offset() + i * sb, sb);
        }
    }

    /** Element strides of {@code shape} aligned right to {@code rank} dimensions, 0 where a dimension broadcasts. */
    static int[] broadcastStrides(int[] shape, int rank) {
        int[] strides = new int[rank];
        int stride = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            strides[rank - shape.length + d] = shape[d] == 1 ? 0 : stride;
            stride *= shape[d];
        }
        return strides;
    }
}
